"""console: who signs in to the manager's console — sign-in sessions (Cognito, an HttpOnly cookie)
and each account's console users (Cognito users in ``<account>:<role>`` groups)."""
