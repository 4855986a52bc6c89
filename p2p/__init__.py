"""Thin py-libp2p wrapper: host, gossip, request/response. The only package that imports libp2p."""
