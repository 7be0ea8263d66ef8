"""The bundled services: Key Vault and a managed-identity endpoint, one process, one port."""
