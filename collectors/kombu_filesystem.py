"""Kombu's filesystem:// transport with each message file written whole before it can be read.

Kombu writes a .msg file in place, so a consumer listing the folder at that instant can take
the file still empty and die on the JSON (a demo worker did). Writing under a name no consumer
matches and renaming it (atomic within a folder) closes that window. `install()` makes
filesystem:// mean this transport in the calling process; every process that writes to the
folder (worker, producers, the dashboard's control calls) installs it.
"""
from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: write a temporary file, then rename it into place."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        # No dot in the temporary name: consumers match "<stamp>_<uuid>.<queue>.msg" only.
        temporary = os.path.join(self.data_folder_out, f"writing_{uuid.uuid4().hex}")
        try:
            with open(temporary, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
