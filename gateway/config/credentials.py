"""systemd credentials as a settings source: secrets that never sit in the TOML file.

Under systemd, ``LoadCredential=mqtt__password:/etc/cellsafe/credentials/mqtt__password``
puts a file named ``mqtt__password`` into ``$CREDENTIALS_DIRECTORY``; its content is the
value of ``[mqtt] password``. A file is read only when its name is ``<section>__<key>`` of
a key the settings declare: other credentials in the directory (``commands__keys__<name>``,
read by the commands section itself) are left alone. pydantic-settings' own secrets source
does not read nested keys, hence this one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource


class CredentialsSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read at once, in __call__

    def __call__(self) -> dict[str, Any]:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory or not Path(directory).is_dir():
            return {}
        found: dict[str, dict[str, str]] = {}
        for path in sorted(Path(directory).iterdir()):
            section, _, key = path.name.partition("__")
            if not key or "__" in key or not path.is_file():
                continue
            field = self.settings_cls.model_fields.get(section)
            model = field.annotation if field is not None else None
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            if key in model.model_fields:
                found.setdefault(section, {})[key] = path.read_text(encoding="utf-8").strip()
        return found
