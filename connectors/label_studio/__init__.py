"""Label Studio OSS as a vendor: the connector, and a local server for tests and the demo."""

from connectors.label_studio.client import LabelStudioConnector, label_config
from connectors.label_studio.local import LabelStudioUnavailable, LocalServer, ensure_local_server, install

__all__ = ["LabelStudioConnector", "LabelStudioUnavailable", "LocalServer", "ensure_local_server", "install",
           "label_config"]
