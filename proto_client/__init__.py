"""The project's own client for the Futu/moomoo OpenD gateway, and a simulated gateway for tests and demos."""
