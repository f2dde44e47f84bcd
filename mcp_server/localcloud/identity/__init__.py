"""The local identity platform: an Entra ID (v2) compatible emulator served over HTTPS on loopback.

``IdentityPlatform`` is the interface the rest of the project uses (the stack, the console's local mode, tests):

    with IdentityPlatform(load_demo_tenant()) as idp:
        idp.authority        # https://127.0.0.1:PORT/<tenant id>  (MSAL authority)
        idp.ca_cert_path     # the PEM every client must trust explicitly

The test helpers (``issue_access_token``, ``forge_key``, ``revoke_consent``, ...) mint or sign tokens directly, for
cases no real client can produce (expired, other tenant, forged signature).

The package module holds no code and imports nothing: import the named modules (``platform``, ``app``, ``grants``,
...) directly, so importing any of them never runs a circle back through this file.
"""
