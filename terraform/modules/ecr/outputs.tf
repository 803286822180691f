output "repository_name" {
  description = "Name of the repository."
  value       = local.repository_name
}

output "repository_arn" {
  description = "ARN of the repository."
  value       = local.repository_arn
}

output "repository_url" {
  description = "URL to push to and pull from, without a tag."
  value       = local.repository_url
}
