"""The composition root: FastAPI app, settings, storage, search and the FHIR REST API.

Build the app with ``server.app.create_app(settings)``; storage is ``server.storage.Repository``; the
CapabilityStatement registry is ``server.capabilities.Capabilities`` (``app.state.services.capabilities``).
"""
