from tests.support.fixtures import close_raw_clients, raw_server

__all__ = ["close_raw_clients", "raw_server"]
