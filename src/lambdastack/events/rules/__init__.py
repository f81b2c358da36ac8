"""EventBridge at work: rules matched against events and schedules, their targets invoked."""
