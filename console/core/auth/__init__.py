"""Console-side sign-in: MSAL device-code flow, the token cache in the OS keyring, accounts.

Use ``console.core.auth.manager.AuthManager.from_settings()`` (local mode: the running stack's state file; Azure
mode: settings). Import each name from its module: this package imports nothing, so its modules never import it
back half-built.
"""
