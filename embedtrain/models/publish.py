"""Publishing a saved model (and checkpoints) to a Hugging Face Hub repo, through huggingface_hub's public API.

Only `HfApi.create_repo`, `create_branch` and `upload_folder` are called, and huggingface_hub's errors are read by
their HTTP status and by the HTTP library it exports as `huggingface_hub.utils.httpx` (stable across its majors):
the calls and errors least likely to change under a new huggingface_hub (the reference's pushes broke on such
changes). Every failure becomes a HubError naming its cause and the fix; the token is never part of a message.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import (
    are_progress_bars_disabled,
    disable_progress_bars,
    enable_progress_bars,
    httpx,
    validate_repo_id,
)

from embedtrain.errors import EmbedtrainError, ExitCode, ModelLoadError
from embedtrain.models.load_errors import check_is_model_folder

LOGIN_HINT = "set HF_TOKEN to a token with write access (created at {endpoint}/settings/tokens) or run `hf auth login`"


class HubError(EmbedtrainError):
    """A push to the Hub cannot be done: no token, a refused token, no network, a bad repo id (exit 2), or the Hub
    failing on its side (exit 4)."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.INVALID_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class HubTarget:
    """Where to push: the repo, its visibility when it is created, and the branch (None: the default branch)."""

    repo_id: str
    private: bool = False
    revision: str | None = None


@dataclass(frozen=True)
class Pushed:
    """One commit on the Hub: the repo's page (of the branch pushed to), the commit id and its page."""

    url: str
    commit: str
    commit_url: str


def check_model_folder(folder: Path) -> None:
    """HubError unless `folder` is a saved model (modules.json or config.json): pushing anything else publishes a
    repo nobody can load."""
    if not folder.is_dir():
        raise HubError(f"{folder}: no such folder; give the folder of a saved model, e.g. OUTPUT_DIR/final of a run")
    try:
        check_is_model_folder(folder)
    except ModelLoadError as error:
        raise HubError(f"{error}: not a saved model, so there is nothing to push; give the folder `embedtrain "
                       f"train` saved (OUTPUT_DIR/final) or a checkpoint's model/ folder") from None


def repo_id_problem(repo_id: str) -> str | None:
    """Why `repo_id` cannot name a Hub repo, by huggingface_hub's rules; None when it can."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return (f"{repo_id!r} is not a Hub repo id: use NAME or NAMESPACE/NAME, each of letters, digits, '-', '_' "
                f"and '.' (not first or last), at most 96 characters, e.g. my-user/my-model")
    return None


class HubRepo:
    """A Hub repo to push to. Checks what needs no network when created (repo id, offline mode, a token); creates the
    repo and the branch on the first push."""

    def __init__(self, target: HubTarget, show_progress: bool = True) -> None:
        self.target, self.show_progress = target, show_progress
        problem = repo_id_problem(target.repo_id)
        if problem is not None:
            raise HubError(problem)
        if constants.is_offline_mode():
            raise HubError("HF_HUB_OFFLINE is set, so huggingface_hub sends no request: unset it (or set "
                           "HF_HUB_OFFLINE=0) to push")
        self.api = HfApi()  # its endpoint: HF_ENDPOINT, read by huggingface_hub when imported
        if get_token() is None:
            raise HubError(f"no Hugging Face token to push to {target.repo_id}: "
                           + LOGIN_HINT.format(endpoint=self.api.endpoint))
        self._url: str | None = None

    def push(self, folder: Path, message: str, path_in_repo: str = "",
             allow_patterns: list[str] | None = None) -> Pushed:
        """Upload `folder` (the files matching `allow_patterns`, default all) to `path_in_repo` in one commit."""
        with hub_errors(self.target, self.api.endpoint), _progress_bars(self.show_progress):
            url = self._ensure_repo()
            info = self.api.upload_folder(repo_id=self.target.repo_id, folder_path=folder, path_in_repo=path_in_repo,
                                          commit_message=message, revision=self.target.revision,
                                          allow_patterns=allow_patterns)
        return Pushed(url, info.oid, info.commit_url)

    def _ensure_repo(self) -> str:
        if self._url is None:
            target = self.target
            # private=None for a public push: the Hub's default (an organisation may make new repos private).
            url = str(self.api.create_repo(target.repo_id, private=target.private or None, exist_ok=True))
            if target.revision not in (None, constants.DEFAULT_REVISION):
                self.api.create_branch(target.repo_id, branch=target.revision, exist_ok=True)
                url = f"{url}/tree/{target.revision}"
            self._url = url
        return self._url


class hub_errors:
    """Translates huggingface_hub's errors into a HubError with the cause and the fix."""

    def __init__(self, target: HubTarget, endpoint: str) -> None:
        self.target, self.endpoint = target, endpoint

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, trace) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        message = self.describe(error)
        if message is None:
            return False
        raise HubError(*message) from None

    def describe(self, error: Exception) -> tuple[str, ExitCode] | None:
        repo, endpoint = self.target.repo_id, self.endpoint
        if isinstance(error, OfflineModeIsEnabled):  # a ConnectionError: before the network errors
            return "HF_HUB_OFFLINE is set, so huggingface_hub sends no request: unset it to push", ExitCode.INVALID_INPUT
        http = _http_error_in(error)
        if http is not None:
            return self._refused(http, error), (ExitCode.RUNTIME_FAILURE if _status(http) >= 500 else ExitCode.INVALID_INPUT)
        if isinstance(error, httpx.TransportError):  # connection refused, DNS, timeout, proxy
            return (f"cannot reach the Hub at {endpoint} to push {repo} ({type(error).__name__}: {error}); check the "
                    f"network connection, HTTPS_PROXY if you use a proxy, and HF_ENDPOINT, then push again"), \
                ExitCode.INVALID_INPUT
        return None

    def _refused(self, error: HfHubHTTPError, raised: Exception) -> str:
        repo, endpoint, status = self.target.repo_id, self.endpoint, _status(error)
        said = f"HTTP {status}" + (f": {error.server_message}" if error.server_message else "")
        namespace = repo.split("/")[0] if "/" in repo else "your user"
        if status == 401:
            return (f"the Hub at {endpoint} refused the token ({said}): it is invalid or expired; "
                    + LOGIN_HINT.format(endpoint=endpoint))
        if status == 403:
            return (f"the Hub at {endpoint} does not let this token write to {repo} ({said}): the token is read-only, "
                    f"or {namespace} is not your namespace nor an organisation you may write to; use a token with write "
                    f"access to {namespace} (a fine-grained token needs write permission on it) or push to your own "
                    f"namespace")
        if status == 404:
            return (f"the Hub at {endpoint} has no repo {repo} this token can see ({said}); check REPO_ID and that "
                    f"the token belongs to its owner")
        if status >= 500:
            return f"the Hub at {endpoint} failed on its side while pushing {repo} ({said}); push again later"
        return f"the Hub at {endpoint} refused the push to {repo} ({said}): {raised}"


@contextmanager
def _progress_bars(shown: bool) -> Iterator[None]:
    """huggingface_hub's upload display on stderr, or none (e.g. under training's live progress bar)."""
    if shown or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def _http_error_in(error: BaseException) -> HfHubHTTPError | None:
    """The HTTP error `error` is or was raised from (huggingface_hub wraps some, e.g. an invalid README's 400 in a
    ValueError)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, HfHubHTTPError) and error.response is not None:
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _status(error: HfHubHTTPError) -> int:
    return error.response.status_code
