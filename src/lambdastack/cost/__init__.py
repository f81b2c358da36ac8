"""What functions would cost on AWS Lambda: published prices and the report built from usage."""
