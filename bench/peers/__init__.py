"""The tools a user would pick instead of lambdastack, installed into `bench/.peers/` and run side by side."""
