"""Users, roles (viewer < manager < admin), login sessions, CSRF and API tokens.

users: accounts and roles; sessions: server-side login sessions and throttling; csrf: tokens
bound to the session; tokens: API bearer tokens; web: the Flask hooks tying them to requests.
"""
