"""Messages in: job commands decoded, validated, applied once through the service facade, and answered."""
