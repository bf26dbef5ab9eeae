"""The Core API source: client (token, origins, retries), hypermedia links, crawler."""
