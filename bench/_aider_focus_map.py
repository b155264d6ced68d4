"""Run in Aider's own environment: Aider's RepoMap focused on one file, at each budget, as JSON.

Usage: python _aider_focus_map.py ROOT FOCUS FILE_LIST TOKENS [TOKENS ...]
Prints {tokens: map}; the caller times the process. The focus file is Aider's chat file (what the
model already has; `-` for none: the map of a new conversation); token counts are characters / 4, the estimate
loomkin-mcp uses, so both fill the same budget.
"""

import json
import sys

from _aider_repomap import CharacterModel, QuietIO
from aider.repomap import RepoMap

root, focus, listing, budgets = sys.argv[1], sys.argv[2], sys.argv[3], [int(a) for a in sys.argv[4:]]
files = [f"{root}/{name}" for name in open(listing).read().splitlines() if name and name != focus]
maps = {}
for tokens in budgets:
    repo_map = RepoMap(map_tokens=tokens, root=root, main_model=CharacterModel(), io=QuietIO(), refresh="always")
    chat_files = [f"{root}/{focus}"] if focus != "-" else []
    maps[tokens] = repo_map.get_repo_map(chat_files=chat_files, other_files=files) or ""
print(json.dumps(maps))
