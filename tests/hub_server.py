"""A small Hugging Face Hub-compatible HTTP endpoint on 127.0.0.1, standing in for huggingface.co in tests.

It implements only the routes that the real ``huggingface_hub`` client (2.4.0) calls for ``create_repo``,
``create_branch``, ``upload_folder`` / ``PyTorchModelHubMixin.push_to_hub``, ``list_repo_files`` and
``hf_hub_download``, for model repos and for Spaces. Found by reading the client's source, not by guessing:

- Every ``/api/`` route of a repo is typed: ``/api/models/{repo}/...`` or ``/api/spaces/{repo}/...``
  (``f"{endpoint}/api/{repo_type}s/{repo_id}/..."`` in the client). Below, ``/api/models/`` stands for both. A model
  and a Space may share a name: they are different repos (stored under ``alice/x`` and ``spaces/alice/x``, the
  paths of their pages on the Hub).
- ``HfApi.create_repo``: ``POST /api/repos/create`` {name, organization, visibility?, type?, sdk?}; a Space
  (``type: "space"``) needs an ``sdk`` (the client refuses to send one without, the Hub too). 409 means "exists"
  (and ``exist_ok=True`` accepts it). The JSON answer needs ``url``: ``{endpoint}/spaces/{repo}`` for a Space,
  which the client parses into ``RepoUrl.repo_type``.
- ``HfApi.create_branch``: ``POST /api/models/{repo}/branch/{branch}`` {startingPoint?}; 409 if it exists.
- ``upload_folder`` first validates README.md: ``POST /api/validate-yaml`` {content, repoType}; it reads the JSON
  answer (``errors``, ``warnings``) before checking the status. For a Space (``repoType: "space"``) this server
  also checks the keys of the Spaces configuration reference that the deploy command writes: ``sdk`` one of the
  four SDKs, ``sdk_version``/``python_version``/``app_file``/``title``/``emoji`` strings (so ``python_version:
  3.10``, which YAML reads as the float 3.1, is an error), ``models`` a list of repo ids. With
  ``upload_folder(delete_patterns=...)`` the client lists the repo first (``list_repo_files``, below) and adds a
  ``deletedFile`` line per match, never for ``.gitattributes``. With ``hf_xet`` installed it then runs
  ``_upload_pipeline.pipelined_upload``: ``POST /api/models/{repo}/preupload/{rev}`` returns, per file,
  ``uploadMode`` ("regular" or "lfs"), ``shouldIgnore`` and the current ``oid``. The server decides the mode: the
  real Hub says "lfs" for ``*.safetensors`` (its ``.gitattributes``) and the client then uploads through Xet (the
  ``X-Xet-*`` token-refresh routes and a CAS server), or through the LFS batch API when ``HF_HUB_DISABLE_XET=1``.
  Here every file is "regular", which the client fully supports: the bytes travel base64-encoded inside the commit
  itself, so no Xet or LFS transfer is ever attempted and no environment switch is needed. Our code never sees
  the difference.
- The commit: ``POST /api/models/{repo}/commit/{rev}``, an NDJSON body (``header``, then ``file`` lines with
  base64 content, or ``deletedFile``); the answer needs ``commitUrl``, ``commitOid`` and ``pullRequestUrl``. A
  file whose ``oid`` (git blob sha1) is unchanged is dropped by the client; if nothing changed it reads the head
  with ``GET /api/models/{repo}/revision/{rev}`` (``sha`` in the answer; a Space's answer also has ``sdk``).
  The pipeline may split a large upload into several commits; only the first carries ``parentCommit``.
- ``list_repo_files``: ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=True&expand=False``, paginated by a
  ``Link`` header (one page here); entries ``{"type": "file", path, size, oid}`` or ``{"type": "directory", path,
  oid}``, and the client keeps only the files.
- ``hf_hub_download``: ``HEAD /{repo}/resolve/{rev}/{path}`` (``/spaces/{repo}/resolve/...`` for a Space) must
  answer ``X-Repo-Commit`` (the commit sha, the cache's snapshot name) and ``ETag`` (the git blob sha1 for a
  regular file; the real Hub adds ``X-Linked-Etag``/``X-Linked-Size`` and a redirect only for LFS files), then
  ``GET`` the same URL for the bytes.
  No ``X-Xet-Hash`` header, so the download is plain HTTP. Errors are typed by the ``X-Error-Code`` header:
  ``RepoNotFound`` (401, also for a private repo asked without the owner's token, as on the real Hub),
  ``RevisionNotFound`` and ``EntryNotFound`` (404, with ``X-Repo-Commit`` so the client caches the absence).

The endpoint is pointed at through ``HF_ENDPOINT`` in a subprocess's environment (``huggingface_hub.constants``
reads it at import time), or in-process by ``HfApi(endpoint=...)`` and by patching ``constants.ENDPOINT`` and
``constants.HUGGINGFACE_CO_URL_TEMPLATE``, which ``hf_hub_url`` reads on every call.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha1(data: bytes) -> str:
    """What git (and the Hub) use as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


SPACE_SDKS = ("gradio", "streamlit", "docker", "static")  # huggingface_hub.constants.SPACES_SDK_TYPES
SPACE_STRING_KEYS = ("title", "emoji", "sdk_version", "python_version", "app_file", "license", "short_description")


def repo_key(kind: str, repo_id: str) -> str:
    """Where a repo lives: ``alice/x`` for a model, ``spaces/alice/x`` for a Space (its page on the Hub)."""
    return repo_id if kind == "models" else f"{kind}/{repo_id}"


@dataclass
class Repo:
    owner: str
    private: bool
    sdk: str | None = None  # a Space's SDK
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> {path: bytes}
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit sha

    def resolve(self, revision: str) -> str | None:
        """A branch name or a full commit sha -> the commit sha."""
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


def space_metadata_errors(meta: dict[str, Any]) -> list[str]:
    """What is wrong with a Space README's metadata, for the keys the Spaces configuration reference documents."""
    errors = []
    if meta.get("sdk") not in SPACE_SDKS:
        errors.append(f'"sdk" must be one of {", ".join(SPACE_SDKS)}; got {meta.get("sdk")!r}')
    for key in SPACE_STRING_KEYS:
        if key in meta and not isinstance(meta[key], str):
            errors.append(f'"{key}" must be a string; got {meta[key]!r} (quote it in the YAML)')
    models = meta.get("models", [])
    if not isinstance(models, list) or not all(
        isinstance(m, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", m) for m in models
    ):
        errors.append(f'"models" must be a list of model repo ids (USER/NAME); got {models!r}')
    return errors


class HubError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, commit: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.commit, self.extra = status, message, code, commit, extra


class HubState:
    """Repos, users and a log of the requests served, shared by the handler threads."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens  # token -> user name
        self.repos: dict[str, Repo] = {}
        self.log: list[tuple[str, str]] = []  # (method, path) of every request, for assertions
        self.lock = threading.Lock()

    def commit(self, repo: Repo, branch: str, files: dict[str, bytes], message: str) -> str:
        parent = repo.branches.get(branch, "")
        sha = hashlib.sha1(f"{parent}\n{message}\n".encode() + repr(sorted(files.items())).encode()).hexdigest()
        repo.commits[sha] = files
        repo.branches[branch] = sha
        return sha


_REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
_API = r"/api/(?P<kind>models|spaces)"  # typed API routes
_PAGE = r"/(?:(?P<kind>spaces)/)?"  # file URLs: no prefix for a model
ROUTES = [
    ("POST", re.compile(r"/api/repos/create"), "create_repo"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("POST", re.compile(rf"{_API}/{_REPO}/preupload/(?P<rev>[^/]+)"), "preupload"),
    ("POST", re.compile(rf"{_API}/{_REPO}/commit/(?P<rev>[^/]+)"), "commit"),
    ("POST", re.compile(rf"{_API}/{_REPO}/branch/(?P<branch>[^/]+)"), "create_branch"),
    ("GET", re.compile(rf"{_API}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?"), "tree"),
    ("GET", re.compile(rf"{_API}/{_REPO}(?:/revision/(?P<rev>[^/]+))?"), "repo_info"),
    ("HEAD", re.compile(rf"{_PAGE}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"), "resolve"),
    ("GET", re.compile(rf"{_PAGE}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"), "resolve"),
]


class HubHandler(BaseHTTPRequestHandler):
    server: HubServer

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    # --- plumbing ---
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        state = self.server.state
        with state.lock:
            state.log.append((method, unquote(path)))
        for m, pattern, name in ROUTES:
            match = pattern.fullmatch(path)
            if m == method and match:
                params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                try:
                    with state.lock:
                        getattr(self, name)(method, **params)
                except HubError as e:
                    headers = {"X-Error-Message": e.message}
                    if e.code:
                        headers["X-Error-Code"] = e.code
                    if e.commit:
                        headers["X-Repo-Commit"] = e.commit
                    self._send(e.status, {"error": e.message, **e.extra}, headers, body=method != "HEAD")
                return
        self._send(404, {"error": f"no route {method} {path}"})

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, body: bool = True) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        if not isinstance(payload, bytes):
            self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _user(self, required: bool) -> str | None:
        """The user behind ``Authorization: Bearer <token>``; a bad token is always refused."""
        auth = self.headers.get("Authorization")
        if auth is None:
            if required:
                raise HubError(401, "Authorization header is required")
            return None
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or token not in self.server.state.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.server.state.tokens[token]

    def _repo(self, kind: str, repo_id: str, write: bool = False) -> Repo:
        user = self._user(required=write)
        repo = self.server.state.repos.get(repo_key(kind, repo_id))
        # As on the Hub, a private repo is indistinguishable from a missing one to anyone but its owner.
        if repo is None or (repo.private and user != repo.owner):
            raise HubError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        if write and user != repo.owner:
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def _commit_of(self, repo: Repo, rev: str) -> str:
        sha = repo.resolve(rev)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return sha

    # --- routes ---
    def create_repo(self, method: str) -> None:
        user = self._user(required=True)
        req = json.loads(self._body())
        namespace = req.get("organization") or user
        kind = req.get("type") or "model"
        if kind not in ("model", "space"):
            raise HubError(400, f"this test endpoint does not implement {kind} repos")
        if namespace != user:
            raise HubError(403, f"You don't have the rights to create a {kind} under the namespace {namespace!r}")
        if kind == "space" and req.get("sdk") not in SPACE_SDKS:
            raise HubError(400, f"a Space needs an sdk, one of {', '.join(SPACE_SDKS)}; got {req.get('sdk')!r}")
        repo_id = f"{namespace}/{req['name']}"
        key = repo_key(f"{kind}s", repo_id)
        url = f"{self.server.url}/{key}"
        if key in self.server.state.repos:
            raise HubError(409, f"You already created this {kind} repo", url=url)
        repo = Repo(owner=user, private=req.get("visibility") == "private", sdk=req.get("sdk"))
        self.server.state.commit(repo, "main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        self.server.state.repos[key] = repo
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self, method: str) -> None:
        self._user(required=False)
        req = json.loads(self._body())
        errors = []
        match = re.match(r"---\n(.*?)\n---\n", req["content"], re.S)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
            if not isinstance(meta, dict):
                errors.append({"message": "metadata must be a YAML mapping"})
            elif req.get("repoType") == "space":
                errors += [{"message": m} for m in space_metadata_errors(meta)]
        except yaml.YAMLError as e:
            errors.append({"message": f"invalid YAML: {e}"})
        self._send(400 if errors else 200, {"errors": errors, "warnings": []})

    def preupload(self, method: str, kind: str, repo: str, rev: str) -> None:
        r = self._repo(kind, repo, write=True)
        files = r.commits[self._commit_of(r, rev)]
        req = json.loads(self._body())
        answer = [
            {
                "path": f["path"],
                "uploadMode": "regular",  # see the module docstring: no Xet/LFS transfer
                "shouldIgnore": False,
                "oid": git_blob_sha1(files[f["path"]]) if f["path"] in files else None,
            }
            for f in req["files"]
        ]
        self._send(200, {"files": answer})

    def commit(self, method: str, kind: str, repo: str, rev: str) -> None:
        r = self._repo(kind, repo, write=True)
        if "create_pr" in (urlsplit(self.path).query or ""):
            raise HubError(400, "this test endpoint does not implement pull requests")
        head = self._commit_of(r, rev)
        if rev not in r.branches:
            raise HubError(400, f"{rev} is not a branch: commits go to branches")
        files = dict(r.commits[head])
        summary = ""
        for line in self._body().splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value["summary"]
                if value.get("parentCommit") not in (None, head):
                    raise HubError(412, "parent commit is not the head of the branch")
            elif key == "file" and value.get("encoding") == "base64":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            else:  # lfsFile etc.: we never asked for them in preupload
                raise HubError(400, f"unsupported commit operation {key!r}")
        sha = self.server.state.commit(r, rev, files, summary)
        url = f"{self.server.url}/{repo_key(kind, repo)}/commit/{sha}"
        self._send(200, {"commitUrl": url, "commitOid": sha, "pullRequestUrl": None})

    def create_branch(self, method: str, kind: str, repo: str, branch: str) -> None:
        r = self._repo(kind, repo, write=True)
        body = self._body()
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        if branch in r.branches:
            raise HubError(409, f"Reference refs/heads/{branch} already exists")
        r.branches[branch] = self._commit_of(r, start)
        self._send(200, {})

    def repo_info(self, method: str, kind: str, repo: str, rev: str = "main") -> None:
        r = self._repo(kind, repo)
        sha = self._commit_of(r, rev)
        siblings = [{"rfilename": p} for p in sorted(r.commits[sha])]
        info = {"id": repo, "sha": sha, "private": r.private, "siblings": siblings}
        self._send(200, {**info, "modelId": repo} if kind == "models" else {**info, "sdk": r.sdk})

    def tree(self, method: str, kind: str, repo: str, rev: str, path: str = "") -> None:
        r = self._repo(kind, repo)
        sha = self._commit_of(r, rev)
        recursive = parse_qs(urlsplit(self.path).query).get("recursive", ["false"])[0].lower() in ("true", "1")
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        entries: dict[str, dict[str, Any]] = {}
        for name, data in r.commits[sha].items():
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, min(depth, len(parts) - 1) + 1):  # the folders on the way
                folder = prefix + "/".join(parts[:i])
                oid = hashlib.sha1(folder.encode()).hexdigest()  # not a git tree sha; the client ignores it
                entries[folder] = {"type": "directory", "path": folder, "oid": oid}
            if len(parts) <= depth:
                entries[name] = {"type": "file", "path": name, "size": len(data), "oid": git_blob_sha1(data)}
        if prefix and not entries:
            raise HubError(404, f"{path} does not exist at {rev}", "EntryNotFound", commit=sha)
        self._send(200, [entries[k] for k in sorted(entries)])

    def resolve(self, method: str, repo: str, rev: str, path: str, kind: str = "models") -> None:
        r = self._repo(kind, repo)
        sha = self._commit_of(r, rev)
        data = r.commits[sha].get(path)
        if data is None:
            raise HubError(404, f"{path} does not exist at {rev}", "EntryNotFound", commit=sha)
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"'}
        self._send(200, data, headers, body=method == "GET")


class HubServer(ThreadingHTTPServer):
    """``with HubServer({"token": "user"}) as hub: ...`` serves on ``hub.url`` from a background thread."""

    daemon_threads = True

    def __init__(self, tokens: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.state = HubState(tokens)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()

    def requests(self, method: str | None = None) -> list[str]:
        """Paths requested so far (optionally only with ``method``)."""
        with self.state.lock:
            return [p for m, p in self.state.log if method is None or m == method]


if __name__ == "__main__":  # try the push and load commands by hand: python tests/hub_server.py TOKEN USER
    import sys
    import time

    token, user = (sys.argv[1:3] + ["hf_local_token", "alice"][len(sys.argv[1:3]) :])[:2]
    with HubServer({token: user}) as hub:
        print(f"local hub on {hub.url} for user {user!r}; export HF_ENDPOINT={hub.url} HF_TOKEN=<token>", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
