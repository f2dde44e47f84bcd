"""Local, loopback-only emulators of Microsoft Entra ID and Azure AI Search."""
