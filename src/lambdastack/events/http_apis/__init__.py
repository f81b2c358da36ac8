"""HTTP APIs (API Gateway v2) in front of functions: stage and route selection, serving."""
