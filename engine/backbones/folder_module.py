"""A sentence-transformers input module saved as a folder of its own files (its config JSON, weights, tokenizer).

sentence-transformers loads a module through the class method `load`; here it resolves the folder (a local path or
a hub repository, with ST's hub arguments), builds the module from the folder's files (`from_folder`, per module)
and reads the weights into it. LASER's BiLSTM and the mBART encoder share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from sentence_transformers.sentence_transformer.modules import InputModule


class FolderModule(InputModule):
    """An InputModule whose `load` builds it with `from_folder` and then reads its saved weights."""

    folder_kind = "module"  # named in the error when there is no such folder

    @classmethod
    def from_folder(cls, folder: Path, config: dict[str, Any]) -> Self:
        """The module (weights not loaded yet) from its saved config and the other files in `folder`."""
        raise NotImplementedError

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        init_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        hub_kwargs: dict[str, Any] = {
            "subfolder": subfolder,
            "token": token,
            "cache_folder": cache_folder,
            "revision": revision,
            "local_files_only": local_files_only,
        }
        directory = cls.load_dir_path(model_name_or_path, **hub_kwargs)
        if directory is None:
            raise FileNotFoundError(f"no {cls.folder_kind} at {model_name_or_path!r}")
        module = cls.from_folder(Path(directory), cls.load_config(model_name_or_path, **hub_kwargs))
        cls.load_torch_weights(model_name_or_path, model=module, **hub_kwargs)
        return module
