"""kmsnap.yaml and [tool.kmsnap]: discovery, validation with file:line, precedence."""
