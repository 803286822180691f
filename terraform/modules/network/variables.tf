variable "name" {
  description = "Prefix for resource names."
  type        = string
}

variable "cidr_block" {
  description = "VPC CIDR; each of the two subnets gets a quarter of it."
  type        = string
}
