# A small VPC with two public subnets in two AZs and an internet gateway. No NAT
# gateway (about $33/month each): tasks get a public IP for egress instead, and the
# service's security group admits no inbound traffic.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first two zone names are used, by index; a zone AWS adds later sorts after them, so the subnets never move.
  state = "available"

  filter {
    # Regular AZs only: no Local Zones or Wavelength Zones.
    name   = "zone-type"
    values = ["availability-zone"]
  }
}

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:VPC flow logs need another log group and role and cost per GB; the tasks accept no inbound traffic, so a lab VPC goes without.
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name }
}

# Take every rule away from the VPC's default security group, so nothing that lands
# in it by accident is reachable.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.name}-default-deny" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = var.name }
}

resource "aws_subnet" "public" {
  count = 2

  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(var.cidr_block, 2, count.index)
  availability_zone = data.aws_availability_zones.available.names[count.index]
  # Public IPs are asked for per task (assign_public_ip), not given to everything here.
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-public-${count.index}" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.name}-public" }
}

resource "aws_route" "internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = 2

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}
