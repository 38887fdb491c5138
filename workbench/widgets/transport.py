"""The kernel websocket without Nagle's delay: a slider's reply reaches the page at once, not up to 40 ms later.

Jupyter Server leaves TCP_NODELAY off on the kernel websocket, so when the kernel answers a slider move with a few
small messages (busy, the widget updates, idle), the operating system holds each one back until the page has
acknowledged the one before, and the page acknowledges late (delayed ACKs): tens of milliseconds per move that
no kernel work explains. Servers started with this connection class set TCP_NODELAY on every kernel websocket:

    jupyter lab --ServerApp.kernel_websocket_connection_class=workbench.widgets.transport.NoDelayConnection

``workbench app`` serves the dashboard with it, and the browser tests' JupyterLab runs with it.

Example:
    >>> issubclass(NoDelayConnection, ZMQChannelsWebsocketConnection)
    True
"""

from __future__ import annotations

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

SETTING = "kernel_websocket_connection_class"
CLASS_PATH = f"{__name__}.NoDelayConnection"


class NoDelayConnection(ZMQChannelsWebsocketConnection):
    """Jupyter Server's kernel websocket connection, with TCP_NODELAY set when the page connects."""

    def connect(self):
        self.websocket_handler.set_nodelay(True)
        return super().connect()
