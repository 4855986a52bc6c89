"""gensyn-node: the node (cli, chain spec, service, tx pool, block import, chain db, rpc, ml workers)."""

__version__ = "0.1.0"
