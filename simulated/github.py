"""A simulated github.com for tests, the demo and the benchmarks.

Upstream repositories are real bare git repositories under one root
directory (``root/mozilla-l10n/firefox-l10n.git``), served on 127.0.0.1 over
git's smart HTTP protocol by git's own ``git http-backend`` (a CGI program,
wrapped here in WSGI), so the real ``git clone``, ``git fetch`` and
``git ls-remote`` talk the real wire protocol, v0 and v2, to them. URLs look
like GitHub's: ``http://127.0.0.1:PORT/<owner>/<repo>`` with or without
``.git``. Pushing over HTTP is refused: history is written on disk.

History is written with ``git fast-import``: one process per ``commit()``
and one for a whole ``build_history()``, which is what makes
10,000-commit benchmark repositories take seconds.

``push_payload()`` builds GitHub's push webhook payload from the real
repository, and ``webhook_message()`` / ``taskcluster_github_message()`` wrap
it the two ways it reaches Pulse (DESIGN §5.3b).

Reliability tests inject faults with ``set_fault("error" | "hang")``;
refused connections are ``stop()`` and a later ``start(port=same_port)``.

    python -m simulated.github serve --root DIR [--port N]
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from kombu import Exchange, Producer

if __name__ == "__main__":  # run as a command (below): the worker's modules need Django set up
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    django.setup()

from worker.exchanges import GITHUB_WEBHOOKS as GITHUB_WEBHOOKS_EXCHANGE
from worker.exchanges import TASKCLUSTER_GITHUB as TASKCLUSTER_GITHUB_EXCHANGE

from .httpserver import SimulatedService, serve_from_command_line

NULL = "0" * 40
FAULTS = (None, "error", "hang", "redirect")
# GitHub documents 20 for timeline events and 2048 for webhook deliveries; the smaller cap keeps
# consumers honest (commits[] is never the whole push) with pushes of ordinary size.
PAYLOAD_COMMITS = 20
INSTALLATION_ID = 12345678
_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_REPO = re.compile(r"[A-Za-z0-9._-]+\Z")
# Taskcluster's shouldSkipCommit(): a push whose head commit asks for it publishes nothing.
_CI_SKIP = re.compile(r"\[(skip ci|ci skip)\]", re.IGNORECASE)
_AREAS = ("browser", "toolkit", "devtools/client", "mobile/android")  # where benchmark strings live
_HTTP_BACKEND = Path(subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True)
                     .stdout.strip()) / "git-http-backend"
_CHUNK = 65536


# --- names and git ----------------------------------------------------------


def _valid_name(full_name):
    if not isinstance(full_name, str) or full_name.count("/") != 1:
        return False
    owner, repo = full_name.split("/")
    return bool(_OWNER.match(owner) and _REPO.match(repo)) and repo not in (".", "..") and not repo.endswith(".git")


def _check_name(full_name):
    if not _valid_name(full_name):
        raise ValueError(f"bad repository name {full_name!r}")
    return full_name


def _git_env(git_dir=None):
    # Neither the machine's nor the user's git configuration may change what the simulation does.
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    if git_dir is not None:
        env["GIT_DIR"] = str(git_dir)
    return env


def _git(git_dir, *args, input=None, check=True):
    result = subprocess.run(["git", *args], env=_git_env(git_dir), input=input, capture_output=True, timeout=600)
    if check and result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result


def _fast_import(git_dir, stream, *options):
    """Run one fast-import over ``stream`` (which ends with ``done``); returns what it wrote (get-mark answers)."""
    return _git(git_dir, "fast-import", "--quiet", "--done", *options, input=stream).stdout.decode()


def _quote(path):
    # fast-import's C-style quoting; always quoting keeps spaces and odd characters safe.
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'.encode("utf-8")


def _data(content):
    return b"data %d\n%s\n" % (len(content), content)


def _commit_command(ref, mark, ident, when, message, parents, files, root_tree=None):
    """One fast-import ``commit``: ``parents`` are 40 hex or ``:marks``; ``root_tree`` replaces
    the first parent's tree before ``files`` ({path: bytes, or None to delete}) apply."""
    signature = f"{ident} {int(when)} +0000\n".encode("utf-8")
    out = [b"reset %s\n" % ref.encode()] if not parents else []
    out += [b"commit %s\n" % ref.encode(), b"mark :%d\n" % mark, b"author " + signature,
            b"committer " + signature, _data(message.encode("utf-8"))]
    out += [b"from %s\n" % parents[0].encode()] if parents else []
    out += [b"merge %s\n" % parent.encode() for parent in parents[1:]]
    if root_tree is not None:
        out.append(b'M 040000 %s ""\n' % root_tree.encode())
    for path, content in sorted(files.items()):
        if content is None:
            out.append(b"D " + _quote(path) + b"\n")
        else:
            out += [b"M 100644 inline " + _quote(path) + b"\n", _data(content)]
    return b"".join(out) + b"\n"


def _history_path(n, locales):
    """Benchmark strings: gecko-strings' layout, or firefox-l10n's (one folder per locale)."""
    if locales:
        return f"{locales[n % len(locales)]}/{_AREAS[n % 4]}/strings{n % 400}.ftl"
    return f"{_AREAS[n % 4]}/locales/en-US/strings{n % 400}.ftl"


# --- the server -------------------------------------------------------------


class SimulatedGitHub(SimulatedService):
    thread_name = "simulated-github"

    def __init__(self, root):
        super().__init__()
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self._requests = Counter()  # full name (None: no repository) -> requests
        self._lock = threading.Lock()
        self._fault = (None, None)
        self._redirect_to = None

    @property
    def url(self):
        return self._base_url() + "/"

    def html_url(self, full_name):
        """Where GitHub shows the repository: no trailing slash, no ``.git``."""
        return f"{self._base_url()}/{_check_name(full_name)}"

    def repo_url(self, full_name):
        """The repository URL as the worker stores it: with a trailing slash."""
        return self.html_url(full_name) + "/"

    def requests_for(self, full_name):
        with self._lock:
            return self._requests[full_name]

    def set_fault(self, mode, full_name=None, redirect_to=None):
        """Fail every request (or only those for repository ``full_name``) from now on:
        "error" answers 500, "hang" answers only after ``hang_seconds``, "redirect" answers 302 to
        ``redirect_to`` followed by the request's path and query; None clears."""
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}")
        if (mode == "redirect") != (redirect_to is not None):
            raise ValueError("redirect_to goes with the redirect fault, and only with it")
        self._fault = (mode, full_name)
        self._redirect_to = redirect_to

    def __call__(self, environ, start_response):
        full_name, service_path = _split_path(environ.get("PATH_INFO", "/"))
        with self._lock:
            self.requests_seen += 1
            self._requests[full_name] += 1
        mode, only = self._fault
        if only is not None and only != full_name:
            mode = None
        if mode == "hang" and self._stopping.wait(self.hang_seconds):
            return _text(start_response, "503 Service Unavailable", "simulated github.com stopped\n")
        if mode == "error":
            return _text(start_response, "500 Internal Server Error", "simulated failure\n")
        if mode == "redirect":
            return self.redirect_elsewhere(self._redirect_to, environ, start_response)
        if full_name is None or not self.git_dir(full_name).is_dir():
            return _text(start_response, "404 Not Found", "Repository not found.\n")
        if _is_push(service_path, environ.get("QUERY_STRING", "")):
            return _text(start_response, "403 Forbidden", "simulated github.com is read-only\n")
        return self._http_backend(environ, full_name, service_path, start_response)

    def _http_backend(self, environ, full_name, service_path, start_response):
        """Hand the request to ``git http-backend`` (CGI) and stream its answer back."""
        env = _cgi_environment(environ, self.root, f"/{full_name}.git/{service_path}")
        process = subprocess.Popen([str(_HTTP_BACKEND)], env=env, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # Fed from a thread: http-backend may start answering before it has read the whole request.
        feeder = threading.Thread(target=_feed, args=(process.stdin, _request_body(environ)), daemon=True)
        feeder.start()
        status, headers = _cgi_headers(process.stdout)
        if status is None:
            process.kill()
            process.wait()
            return _text(start_response, "500 Internal Server Error", "git http-backend failed\n")
        start_response(status, headers)
        return _stream(process, feeder)

    # --- writing history ----------------------------------------------------

    def git_dir(self, full_name):
        return self.root / f"{_check_name(full_name)}.git"

    def create_repo(self, full_name, default_branch="main", filters=True):
        """A new empty repository; ``filters``: it serves partial clones (``--filter``), as GitHub does."""
        path = self.git_dir(full_name)
        if path.exists():
            raise FileExistsError(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _git(None, "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path))
        # GitHub's created_at; the directory's own times change with every write.
        _git(path, "config", "simulated.createdAt", str(int(time.time())))
        _git(path, "config", "uploadpack.allowFilter", "true" if filters else "false")
        return path

    def default_branch(self, full_name):
        ref = _git(self.git_dir(full_name), "symbolic-ref", "HEAD").stdout.decode().strip()
        return ref.removeprefix("refs/heads/")

    def tip(self, full_name, branch="main"):
        """The branch's commit as 40 hex, or None if there is no such branch."""
        result = _git(self.git_dir(full_name), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}",
                      check=False)
        return result.stdout.decode().strip() or None

    def branches(self, full_name):
        """{branch: 40 hex} for every branch."""
        out = _git(self.git_dir(full_name), "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/heads/")
        return dict(line.split(" ") for line in out.stdout.decode().splitlines())

    def commit(self, full_name, files, message="A change", author="Someone <someone@example.com>", branch="main",
               parents=None, date=None):
        """Commit ``files`` ({path: bytes, or None to delete}) on top of ``parents`` (default: the tip of
        ``branch``; two make a merge, which keeps both sides) and move ``branch`` to it, as a push would
        (forced if ``parents`` leave the old tip out). Returns the new commit as 40 hex."""
        git_dir = self.git_dir(full_name)
        if parents is None:
            tip = self.tip(full_name, branch)
            parents = [tip] if tip else []
        if len(parents) > 2:
            raise ValueError("at most two parents")
        root_tree = _merged_tree(git_dir, *parents) if len(parents) == 2 else None
        when = time.time() if date is None else date
        stream = _commit_command(f"refs/heads/{branch}", 1, author, when, message, list(parents), files, root_tree)
        return _fast_import(git_dir, stream + b"get-mark :1\ndone\n", "--force").strip()

    def commit_literally(self, full_name, files, author, message, branch="main", date=b"1700000000 +0000",
                         headers=b""):
        """A commit of exactly these bytes, on top of ``branch``'s tip, even what ``git commit`` refuses
        (tests of hostile text): ``author`` and ``message`` as bytes, ``date`` written after the author
        as it is, ``headers`` (lines, each ending in a newline) added after the committer; ``files``
        ({name: bytes}, one folder deep) replace the tree. Returns the new commit as 40 hex."""
        git_dir = self.git_dir(full_name)
        entries = b"".join(b"100644 blob %s\t%s\0" % (_git(git_dir, "hash-object", "-w", "--stdin", input=data)
                                                       .stdout.strip(), name) for name, data in files.items())
        tree = _git(git_dir, "mktree", "-z", input=entries).stdout.strip()
        tip = self.tip(full_name, branch)
        raw = b"tree %s\n" % tree + (b"parent %s\n" % tip.encode() if tip else b"")
        raw += b"author %s %s\ncommitter Committer <c@example.com> 1700000000 +0000\n%s\n%s" % (
            author, date, headers, message)
        sha = _git(git_dir, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=raw).stdout.strip()
        self.set_branch(full_name, branch, sha.decode())
        return sha.decode()

    def set_branch(self, full_name, branch, sha):
        """Point ``branch`` at ``sha`` whatever it pointed at before: a force push."""
        _git(self.git_dir(full_name), "update-ref", f"refs/heads/{branch}", sha)

    force_push = set_branch

    def delete_branch(self, full_name, branch):
        _git(self.git_dir(full_name), "update-ref", "-d", f"refs/heads/{branch}")

    def build_history(self, full_name, count, files_per_commit=3, merges_every=None, branch="main", locales=None,
                      date=None):
        """Append ``count`` commits to ``branch`` with one fast-import. With ``merges_every=N``, every Nth
        commit merges a one-commit side branch forked from the parent of the tip. ``locales`` lays the
        files out as firefox-l10n does (``<locale>/...``); ``date`` is the first commit's time (default:
        ``count`` seconds ago), one second apart. Returns the new commits in order."""
        git_dir = self.git_dir(full_name)
        ref = f"refs/heads/{branch}"
        tip = self.tip(full_name, branch)
        started = int(time.time()) - count if date is None else int(date)
        author = "Dev <dev@example.com>"
        commands = []  # fast-import marks are 1 + the index of the commit in this list
        parent_of = []  # what each new commit's first parent is: 40 hex, a :mark, or None
        while len(commands) < count:
            i = len(commands)
            files = {_history_path(n, locales): f"key{n} = Value {i}\n".encode()
                     for n in range(i * files_per_commit, (i + 1) * files_per_commit)}
            last = f":{i}" if i else tip
            if merges_every and i % merges_every == 0 and i >= 2 and count - i >= 2:
                # The side commit forks from the tip's parent; the merge then takes its files, as a clean
                # merge would (the tip's own change is to other files).
                side = f":{i + 1}"
                commands.append(_commit_command(ref, i + 1, author, started + i, f"Side {i}", [parent_of[-1]], files))
                parent_of.append(parent_of[-1])
                commands.append(_commit_command(ref, i + 2, author, started + i, f"Merge {i}", [last, side], files))
                parent_of.append(last)
            else:
                parents = [last] if last else []
                commands.append(_commit_command(ref, i + 1, author, started + i, f"Change {i}\n\nBug {100000 + i}",
                                                parents, files))
                parent_of.append(last)
        marks = git_dir / "simulated-marks"
        try:
            _fast_import(git_dir, b"".join(commands) + b"done\n", f"--export-marks={marks}")
            sha_of = dict(line.split(" ") for line in marks.read_text().splitlines())
        finally:
            marks.unlink(missing_ok=True)
        return [sha_of[f":{mark}"] for mark in range(1, count + 1)]


def _merged_tree(git_dir, ours, theirs):
    result = _git(git_dir, "merge-tree", "--write-tree", "--no-messages", ours, theirs, check=False)
    if result.returncode != 0:
        raise ValueError(f"{ours} and {theirs} do not merge cleanly")
    return result.stdout.decode().split("\n")[0]


# --- smart HTTP through git http-backend --------------------------------------


def _split_path(path):
    """``/<owner>/<repo>[.git]/<rest>`` -> ("owner/repo", "rest"); (None, "") if that is no repository name."""
    parts = [part for part in path.split("/") if part]
    if len(parts) < 2:
        return None, ""
    full_name = f"{parts[0]}/{parts[1].removesuffix('.git')}"
    return (full_name if _valid_name(full_name) else None), "/".join(parts[2:])


def _is_push(service_path, query_string):
    return service_path.endswith("git-receive-pack") or "service=git-receive-pack" in query_string


def _cgi_environment(environ, project_root, path_info):
    env = _git_env()
    env.update({
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        "REQUEST_METHOD": environ.get("REQUEST_METHOD", "GET"),
        "PATH_INFO": path_info,
        "QUERY_STRING": environ.get("QUERY_STRING", ""),
        "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
        "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
    })
    env.pop("GIT_DIR", None)
    # Without it, http-backend and upload-pack speak protocol v0.
    if environ.get("HTTP_GIT_PROTOCOL"):
        env["GIT_PROTOCOL"] = environ["HTTP_GIT_PROTOCOL"]
    # http-backend inflates gzip request bodies itself.
    if environ.get("HTTP_CONTENT_ENCODING"):
        env["HTTP_CONTENT_ENCODING"] = environ["HTTP_CONTENT_ENCODING"]
    # A chunked body is de-chunked here and has no length: http-backend then reads to end of file.
    if environ.get("CONTENT_LENGTH") and not _chunked(environ):
        env["CONTENT_LENGTH"] = environ["CONTENT_LENGTH"]
    return env


def _chunked(environ):
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def _request_body(environ):
    """The request body in pieces. wsgiref hands over the raw socket stream, so git's chunked
    transfer encoding (used for bodies over http.postBuffer) is decoded here."""
    stream = environ["wsgi.input"]
    if _chunked(environ):
        while True:
            size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while stream.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return
            yield stream.read(size)
            stream.readline()  # the CRLF after each chunk
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    while remaining > 0:
        piece = stream.read(min(remaining, _CHUNK))
        if not piece:
            return
        remaining -= len(piece)
        yield piece


def _feed(pipe, pieces):
    try:
        for piece in pieces:
            pipe.write(piece)
    except (BrokenPipeError, OSError, ValueError):
        pass  # http-backend answered (an error) without reading everything
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def _cgi_headers(stdout):
    """Read a CGI response's headers: (WSGI status, [(name, value)]), or (None, None) if there are none."""
    status, headers = "200 OK", []
    while True:
        line = stdout.readline()
        if not line:
            return None, None
        line = line.rstrip(b"\r\n").decode("latin-1")
        if not line:
            return status, headers
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = value.strip()
        else:
            headers.append((name.strip(), value.strip()))


def _stream(process, feeder):
    try:
        while piece := process.stdout.read1(_CHUNK):
            yield piece
    finally:
        # Also reached when the client goes away mid-answer.
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        feeder.join(timeout=5)


def _text(start_response, status, text):
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


# --- push webhook payloads ----------------------------------------------------


def push_payload(github, full_name, before, after, ref="refs/heads/main", pusher=("octocat", "octocat@example.com"),
                 forced=None, created=None, deleted=None, installation_id=None, commit_limit=PAYLOAD_COMMITS):
    """GitHub's ``push`` webhook payload for moving ``ref`` from ``before`` to ``after`` (40 zeros for a
    created or deleted ref), computed from the repository, which must already hold the push.

    ``created``, ``deleted`` and ``forced`` default to what the repository says. ``commits`` holds the
    last ``commit_limit`` pushed commits, oldest first; ``installation_id`` adds the ``installation``
    that deliveries to a GitHub App (such as Taskcluster's) carry."""
    git_dir = github.git_dir(full_name)
    created = before == NULL if created is None else created
    deleted = after == NULL if deleted is None else deleted
    if forced is None:
        forced = not (created or deleted) and not _is_ancestor(git_dir, before, after)
    # Distinct commits are new to the repository: on no other branch or tag.
    others = [sha for name, sha in _refs(git_dir).items() if name != ref]
    exclude = others if created else [before]
    pushed = [] if deleted else _rev_list(git_dir, after, exclude)
    distinct = set() if deleted else set(_rev_list(git_dir, after, exclude + others))
    shown = pushed[-commit_limit:] if commit_limit else []
    html_url = github.html_url(full_name)
    described = _describe(git_dir, shown + ([] if deleted else [after]), html_url, distinct)
    name, email = pusher
    payload = {
        "ref": ref,
        "before": before,
        "after": after,
        "repository": _repository(github, full_name, git_dir),
        "pusher": {"name": name, "email": email},
        "organization": _organization(full_name.split("/")[0]),
        "sender": _user(name),
        "created": created,
        "deleted": deleted,
        "forced": forced,
        "base_ref": _base_ref(git_dir, ref, after) if created else None,
        "compare": _compare_url(html_url, ref, before, after, created, deleted),
        "commits": [described[sha] for sha in shown],
        "head_commit": None if deleted else described[after],
    }
    if installation_id is not None:
        payload["installation"] = {"id": installation_id, "node_id": _node_id("Installation", installation_id)}
    return payload


def _refs(git_dir):
    out = _git(git_dir, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/", "refs/tags/")
    return dict(line.split(" ") for line in out.stdout.decode().splitlines())


def _is_ancestor(git_dir, ancestor, descendant):
    return _git(git_dir, "merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0


def _rev_list(git_dir, head, exclude):
    """Commits reachable from ``head`` but not from ``exclude``, oldest first."""
    args = ["rev-list", "--reverse", "--topo-order", head, "--not", *exclude]
    return _git(git_dir, *args).stdout.decode().split()


def _base_ref(git_dir, ref, after):
    """For a new ref made at an existing branch's tip, that branch (the default branch first)."""
    head = _git(git_dir, "symbolic-ref", "HEAD").stdout.decode().strip()
    same = sorted(name for name, sha in _refs(git_dir).items()
                  if sha == after and name != ref and name.startswith("refs/heads/"))
    return head if head in same else (same[0] if same else None)


def _compare_url(html_url, ref, before, after, created, deleted):
    if created:
        return f"{html_url}/compare/{ref.split('/', 2)[2]}"
    return f"{html_url}/compare/{before[:12]}...{(NULL if deleted else after)[:12]}"


_LOG_FIELDS = ("id", "tree_id", "author_name", "author_email", "committer_name", "committer_email", "timestamp",
               "message")


def _describe(git_dir, shas, html_url, distinct):
    """{sha: commit as a push payload lists it}, with the files changed against the first parent."""
    if not shas:
        return {}
    out = _git(git_dir, "log", "--no-walk=unsorted", "-z", "--format=%H%x1f%T%x1f%an%x1f%ae%x1f%cn%x1f%ce%x1f%cI%x1f%B",
               *shas).stdout.decode("utf-8", "replace")
    commits = {}
    for record in out.split("\0"):
        if not record:
            continue
        fields = dict(zip(_LOG_FIELDS, record.split("\x1f", len(_LOG_FIELDS) - 1), strict=False))
        commits[fields["id"]] = {
            "id": fields["id"],
            "tree_id": fields["tree_id"],
            "distinct": fields["id"] in distinct,
            "message": fields["message"].rstrip("\n"),
            "timestamp": fields["timestamp"],
            "url": f"{html_url}/commit/{fields['id']}",
            "author": _git_user(fields["author_name"], fields["author_email"]),
            "committer": _git_user(fields["committer_name"], fields["committer_email"]),
            "added": [],
            "removed": [],
            "modified": [],
        }
    for sha, changes in _changed_files(git_dir, list(commits)).items():
        for status, path in changes:
            key = {"A": "added", "D": "removed"}.get(status, "modified")
            commits[sha][key].append(path)
    return commits


def _changed_files(git_dir, shas):
    """{sha: [(status letter, path)]} against each commit's first parent (the root against nothing)."""
    first_parent = {}
    for line in _git(git_dir, "log", "--no-walk=unsorted", "--format=%H %P", *shas).stdout.decode().splitlines():
        sha, *parents = line.split()
        first_parent[sha] = parents[0] if parents else None
    request = "".join(f"{sha} {parent}\n" if parent else f"{sha}\n" for sha, parent in first_parent.items())
    out = _git(git_dir, "diff-tree", "--stdin", "--always", "--root", "-r", "--no-renames", "--name-status", "-z",
               input=request.encode()).stdout.decode("utf-8", "replace")
    changes, current = {}, None
    tokens = iter(out.split("\0"))
    for token in tokens:
        if token in first_parent and (current is None or token not in changes):
            current = changes.setdefault(token, [])
        elif token:
            current.append((token[0], next(tokens)))
    return changes


def _git_user(name, email):
    # GitHub fills username in when the email belongs to an account; here the email's local part does.
    return {"name": name, "email": email, "username": email.split("@")[0].split("+")[-1]}


def _number(kind, text):
    """A stable id for a name, as GitHub's database would give."""
    return int(hashlib.sha1(f"{kind}:{text}".encode()).hexdigest()[:8], 16) % 10**9


def _node_id(kind, number):
    prefix = {"Repository": "010", "Organization": "012", "User": "04", "Installation": "029"}[kind]
    return base64.b64encode(f"{prefix}:{kind}{number}".encode()).decode()


def _user(login):
    number = _number("User", login)
    return {
        "login": login, "id": number, "node_id": _node_id("User", number),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4", "gravatar_id": "",
        "url": f"https://api.github.com/users/{login}", "html_url": f"https://github.com/{login}",
        "type": "User", "site_admin": False,
    }


def _organization(login):
    number = _number("Organization", login)
    return {
        "login": login, "id": number, "node_id": _node_id("Organization", number),
        "url": f"https://api.github.com/orgs/{login}", "repos_url": f"https://api.github.com/orgs/{login}/repos",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4", "description": "",
    }


def _repository(github, full_name, git_dir):
    """The repository as push payloads show it: unlike other events, created_at and pushed_at are
    Unix times, and url is the web page, not the API."""
    owner, name = full_name.split("/")
    number = _number("Repository", full_name)
    owner_number = _number("Organization", owner)
    html_url = github.html_url(full_name)
    created_at = int(_git(git_dir, "config", "--default", "0", "simulated.createdAt").stdout.decode().strip())
    default_branch = github.default_branch(full_name)
    host = html_url.split("://", 1)[1].split("/", 1)[0]
    return {
        "id": number,
        "node_id": _node_id("Repository", number),
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": {
            "name": owner, "email": None, "login": owner, "id": owner_number,
            "node_id": _node_id("Organization", owner_number),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{owner_number}?v=4", "gravatar_id": "",
            "url": f"https://api.github.com/users/{owner}", "html_url": f"{html_url.rsplit('/', 2)[0]}/{owner}",
            "type": "Organization", "site_admin": False,
        },
        "html_url": html_url,
        "description": None,
        "fork": False,
        "url": html_url,
        "created_at": created_at,
        "updated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pushed_at": int(time.time()),
        "git_url": f"git://{host}/{full_name}.git",
        "ssh_url": f"git@{host.split(':')[0]}:{full_name}.git",
        "clone_url": f"{html_url}.git",
        "svn_url": html_url,
        "homepage": None,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": None,
        "has_issues": True,
        "has_projects": False,
        "has_downloads": True,
        "has_wiki": False,
        "has_pages": False,
        "forks_count": 0,
        "archived": False,
        "disabled": False,
        "open_issues_count": 0,
        "license": None,
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "default_branch": default_branch,
        "stargazers": 0,
        "master_branch": default_branch,
        "organization": owner,
    }


# --- Pulse messages -----------------------------------------------------------


def _sent():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def webhook_message(payload, event="push"):
    """``exchange/github-webhooks/v1``: (routing key ``<owner>/<repo>/<event>``, body)."""
    routing_key = f"{payload['repository']['full_name']}/{event}"
    body = {
        "event": event,
        "request_id": str(uuid.uuid4()),
        "payload": payload,
        "_meta": {"exchange": GITHUB_WEBHOOKS_EXCHANGE, "routing_key": routing_key, "serializer": "json",
                  "sent": _sent()},
    }
    return routing_key, body


def skips_ci(payload):
    """Whether Taskcluster drops this push: its head commit (else its last commit) asks for [ci skip]."""
    head = payload.get("head_commit") or (payload.get("commits") or [None])[-1]
    return bool(head and _CI_SKIP.search(head.get("message") or ""))


def _routing_field(name):
    # Taskcluster's sanitizeGitHubField(): routing key words cannot hold dots.
    return re.sub(r"[^a-zA-Z0-9_.-]", "", name).replace(".", "%")


def _push_details(payload):
    """Taskcluster's getPushDetails(), with the email its API lookup falls back to."""
    ref, repository, sender = payload["ref"], payload["repository"], payload["sender"]
    ref_name = ref.split("/", 2)[2]
    is_tag = ref.startswith("refs/tags/")
    details = {
        "event.base.ref": ref,
        "event.base.repo.name": repository["name"],
        "event.base.repo.url": repository["clone_url"],
        "event.base.sha": payload["before"],
        "event.base.user.login": sender["login"],
        "event.head.ref": ref,
        "event.head.repo.name": repository["name"],
        "event.head.repo.url": repository["clone_url"],
        "event.head.sha": payload["after"],
        "event.head.user.login": sender["login"],
        "event.head.user.id": sender["id"],
        "event.type": "tag" if is_tag else "push",
    }
    if is_tag:
        details["event.head.tag"] = ref_name
    else:
        details["event.base.repo.branch"] = details["event.head.repo.branch"] = ref_name
    details["event.head.user.email"] = sender["login"].removesuffix("[bot]") + "@users.noreply.github.com"
    return details


def taskcluster_github_message(payload, installation_id=None):
    """``exchange/taskcluster-github/v1/push``: (routing key ``primary.<organization>.<repository>``, body),
    or None for a push Taskcluster does not publish (``[ci skip]`` / ``[skip ci]``, see ``skips_ci``).
    The payload gets the ``installation`` Taskcluster's GitHub App deliveries carry, if it has none."""
    if skips_ci(payload):
        return None
    if installation_id is None:
        installation_id = (payload.get("installation") or {}).get("id", INSTALLATION_ID)
    installation = {"id": installation_id, "node_id": _node_id("Installation", installation_id)}
    organization = _routing_field(payload["repository"]["owner"]["name"])
    repository = _routing_field(payload["repository"]["name"])
    body = {
        "version": 1,
        "organization": organization,
        "repository": repository,
        "installationId": installation["id"],
        "eventId": str(uuid.uuid4()),  # GitHub's X-GitHub-Delivery
        "tasks_for": "github-push",
        "branch": payload["ref"].split("/", 2)[2],
        "details": _push_details(payload),
        "body": dict(payload, installation=installation),
    }
    return f"primary.{organization}.{repository}", body


def _publish(connection, exchange, routing_key, body):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    Producer(connection.default_channel).publish(
        payload,
        exchange=Exchange(exchange, type="topic", passive=True),
        routing_key=routing_key,
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
        declare=[],
    )


def publish_webhook(connection, routing_key, body):
    """Publish on exchange/github-webhooks/v1; ``body`` may be raw bytes."""
    _publish(connection, GITHUB_WEBHOOKS_EXCHANGE, routing_key, body)
    return routing_key


def publish_taskcluster_github(connection, routing_key, body):
    """Publish on exchange/taskcluster-github/v1/push and return the routing key; a ``[ci skip]`` push
    publishes nothing and returns None, as Taskcluster drops it."""
    if body is None or (isinstance(body, dict) and skips_ci(body.get("body") or {})):
        return None
    _publish(connection, TASKCLUSTER_GITHUB_EXCHANGE, routing_key, body)
    return routing_key


def main():
    serve_from_command_line(SimulatedGitHub, "python -m simulated.github", __doc__.split("\n\n")[0],
                            "directory holding <owner>/<repo>.git")


if __name__ == "__main__":
    main()
