"""Run in Aider's own environment: build Aider's RepoMap for a file list, print the seconds it took.

Usage: python _aider_repomap.py ROOT TOKENS FILE_LIST
Token counts use characters / 4, the estimate loomkin-mcp uses, so both fill the same budget.
"""

import sys
import time

from aider.repomap import RepoMap


class CharacterModel:
    def token_count(self, text: str) -> float:
        return len(text) / 4


class QuietIO:
    def tool_output(self, *args: object, **kwargs: object) -> None:
        pass

    tool_warning = tool_error = tool_output

    def read_text(self, filename: str, silent: bool = False) -> str | None:
        try:
            with open(filename, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None


def main() -> None:
    root, tokens, listing = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    files = [f"{root}/{name}" for name in open(listing).read().splitlines() if name]
    started = time.perf_counter()
    repo_map = RepoMap(map_tokens=tokens, root=root, main_model=CharacterModel(), io=QuietIO(), refresh="always")
    text = repo_map.get_repo_map(chat_files=[], other_files=files)
    elapsed = time.perf_counter() - started
    assert text, "Aider produced an empty map"
    print(elapsed)


if __name__ == "__main__":
    main()
