"""pyannote.database's FileFinder, with each folder listed once

pyannote.database resolves a file's "audio" from the database's path
templates (``Databases: SpeechOcean762: data/speechocean762/WAVE/{uri}.*``),
globbing the file system once per file: 2,500 globs of the same folder to
evaluate SpeechOcean762. :class:`ListingFileFinder` gives the same answers
and the same errors, and lists a folder once when a template's wildcards are
all in the file name.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Dict, List, Optional

from pyannote.database import FileFinder

__all__ = ["ListingFileFinder"]


class ListingFileFinder(FileFinder):
    """A `FileFinder` that lists each folder once

    A template whose wildcards are all in its last component
    (``WAVE/{uri}.*``) is matched against the folder's listing, read once and
    kept: a file found there is returned as `FileFinder` would return it.
    Anything else, and a file whose name matches nothing or several entries of
    the listing (a folder that changed since, or an ambiguous uri), goes
    through `FileFinder` itself, so that errors are pyannote.database's own.

    Parameters
    ----------
    registry : pyannote.database.registry.Registry
        Where the databases' path templates are declared.
    """

    def __init__(self, registry=None):
        super().__init__(registry=registry)
        self._listings: Dict[Path, Optional[List[str]]] = {}

    def _listing(self, folder: Path) -> Optional[List[str]]:
        if folder not in self._listings:
            try:
                self._listings[folder] = os.listdir(folder)
            except OSError:
                self._listings[folder] = None
        return self._listings[folder]

    def _matches(self, path: Path) -> Optional[List[Path]]:
        """Entries of `path`'s folder its name matches; None when the listing cannot answer"""
        if "*" in str(path.parent):
            return None
        names = self._listing(path.parent)
        if names is None:
            return None
        return [path.parent / name for name in names if fnmatch.fnmatchcase(name, path.name)]

    def __call__(self, current_file) -> Path:
        uri, database = current_file["uri"], current_file["database"]
        templates = self.registry.sources[database]
        if isinstance(templates, str):
            templates = [templates]
        found = []
        for template in templates:
            path = Path(template.format(uri=uri, database=database))
            matches = self._matches(path) if "*" in path.name else None
            if matches is None:
                return super().__call__(current_file)
            found.extend(matches)
        if len(found) == 1:
            return found[0]
        return super().__call__(current_file)
