"""PriorGate's own SMART App Launch 2.1.0 authorization for patients (standalone launch).

A patient signs in with a PriorGate patient login (linked to one FHIR Patient id in one tenant) and
approves a registered patient-facing app; the app exchanges the authorization code (PKCE S256) at the
token endpoint for a local access token whose principal is of kind ``patient``.

* ``accounts``: patient logins (argon2id passwords, the operations pages' hashing) and their store;
* ``apps``: patient-facing app registrations (public or confidential with a secret) from a file;
* ``authorization``: validating an authorization request (which errors may be redirected);
* ``grants``: authorization codes and refresh tokens in the database (single use, rotation);
* ``exchange``: the ``authorization_code`` and ``refresh_token`` grants of ``POST /auth/token``;
* ``web``: ``GET``/``POST /auth/authorize`` (sign-in and approval page);
* ``events``: the AuditEvents of sign-ins, codes and tokens; ``cli``: ``priorgate patients`` and
  ``priorgate patient-apps``; ``wiring``: assembling it all for ``create_app``.
"""
