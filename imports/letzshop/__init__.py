"""Letzshop: the GraphQL client, order sync, fulfilment queue and their admin and API.

The only place in Wizamart that speaks GraphQL (see `client.py`).
"""
