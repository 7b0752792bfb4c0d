"""The FIDO2 authenticator: CTAP2 commands, clientPIN, credential management, authenticatorConfig, CTAPHID."""
