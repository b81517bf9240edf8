"""A local stand-in for the Hugging Face Hub's HTTP API: the routes huggingface_hub's `create_repo`, `create_branch`
and `upload_folder` call, served by http.server in a thread, recording every request.

Tests point huggingface_hub at it (HF_ENDPOINT in a subprocess, or `constants.ENDPOINT` in this process) and run
embedtrain's real push code. Every file is answered "regular" by /preupload, so it travels base64-encoded in the
commit's NDJSON; the LFS/Xet transfer of large files is huggingface_hub's own path and not served here.
"""

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml

TOKEN = "hf_local_test_token_0123456789"  # the token the server accepts


@dataclass
class Request:
    method: str
    path: str  # unquoted, without the query
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Commit:
    repo_id: str
    revision: str
    summary: str
    files: dict[str, bytes]  # path in repo -> content
    oid: str


@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})  # branch -> path -> content


class LocalHub:
    """The Hub's API for pushes. `refuse[route] = (status, message)` makes a route answer with that error; routes:
    create, repo_info, branch, validate_yaml, preupload, commit."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.repos: dict[str, Repo] = {}
        self.commits: list[Commit] = []
        self.refuse: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "LocalHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def files(self, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        return self.repos[repo_id].branches[branch]

    # -- the routes ----------------------------------------------------------------------------------------------

    def answer(self, request: Request) -> tuple[int, dict]:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "Invalid credentials in Authorization header"}
        routes = [
            ("POST", r"/api/repos/create", "create", self._create),
            ("POST", r"/api/validate-yaml", "validate_yaml", self._validate_yaml),
            ("POST", r"/api/models/([^/]+/[^/]+)/branch/(.+)", "branch", self._branch),
            ("POST", r"/api/models/([^/]+/[^/]+)/preupload/(.+)", "preupload", self._preupload),
            ("POST", r"/api/models/([^/]+/[^/]+)/commit/(.+)", "commit", self._commit),
            ("GET", r"/api/models/([^/]+/[^/]+?)(?:/revision/(.+))?", "repo_info", self._repo_info),
        ]
        for method, pattern, name, route in routes:
            found = re.fullmatch(pattern, request.path)
            if method == request.method and found:
                if name in self.refuse:
                    status, message = self.refuse[name]
                    return status, {"error": message}
                with self._lock:
                    return route(request, *found.groups())
        return 404, {"error": f"no route {request.method} {request.path}"}

    def _create(self, request: Request) -> tuple[int, dict]:
        payload = json.loads(request.body)
        repo_id = f"{payload.get('organization') or 'local-user'}/{payload['name']}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}
        self.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
        return 200, {"url": f"{self.url}/{repo_id}", "name": repo_id}

    def _repo_info(self, request: Request, repo_id: str, revision: str | None) -> tuple[int, dict]:
        if repo_id not in self.repos:
            return 404, {"error": "Repository not found"}
        return 200, {"id": repo_id, "sha": "0" * 40, "private": self.repos[repo_id].private}

    def _branch(self, request: Request, repo_id: str, branch: str) -> tuple[int, dict]:
        branches = self.repos[repo_id].branches
        if branch in branches:
            return 409, {"error": f"Reference refs/heads/{branch} already exists"}
        branches[branch] = dict(branches[json.loads(request.body or b"{}").get("startingPoint", "main")])
        return 200, {}

    def _validate_yaml(self, request: Request) -> tuple[int, dict]:
        content = json.loads(request.body)["content"]
        found = re.match(r"---\n(.*?)\n---", content, re.DOTALL)
        try:
            metadata = yaml.safe_load(found.group(1)) if found else {}
        except yaml.YAMLError as error:
            return 400, {"errors": [{"message": f"invalid YAML: {error}"}], "error": "invalid metadata"}
        if not isinstance(metadata, dict):
            return 400, {"errors": [{"message": "the metadata is not a mapping"}], "error": "invalid metadata"}
        return 200, {"errors": [], "warnings": []}

    def _preupload(self, request: Request, repo_id: str, revision: str) -> tuple[int, dict]:
        if repo_id not in self.repos:
            return 404, {"error": "Repository not found"}
        files = json.loads(request.body)["files"]
        return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                               for f in files]}

    def _commit(self, request: Request, repo_id: str, revision: str) -> tuple[int, dict]:
        if repo_id not in self.repos or revision not in self.repos[repo_id].branches:
            return 404, {"error": "Repository or revision not found"}
        lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        files = {}
        for line in lines:
            if line["key"] == "file":
                assert line["value"]["encoding"] == "base64"
                files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            elif line["key"] != "header":
                return 400, {"error": f"unexpected commit operation {line['key']}"}
        oid = hashlib.sha1(request.body).hexdigest()
        self.repos[repo_id].branches[revision].update(files)
        self.commits.append(Commit(repo_id, revision, header["summary"], files, oid))
        return 200, {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}


def _handler(hub: LocalHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as huggingface_hub's client expects

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            request = Request(self.command, unquote(parts.path), parts.query,
                              {key.lower(): value for key, value in self.headers.items()}, body)
            hub.requests.append(request)
            status, payload = hub.answer(request)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args) -> None:  # quiet
            pass

    return Handler
