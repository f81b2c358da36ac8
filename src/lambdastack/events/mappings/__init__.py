"""Event source mappings at work: pollers that read a source and invoke the mapped function."""
