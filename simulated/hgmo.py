"""A simulated hg.mozilla.org for tests, the demo and the benchmarks.

Upstream repositories are real Mercurial repositories under one root
directory (``root/l10n-central/de``, ``root/releases/l10n/mozilla-beta/fr``),
served on 127.0.0.1 by Mercurial's own hgwebdir, so the real ``hg clone`` and
``hg pull`` talk the real wire protocol to them. The one thing hgweb lacks is
hg.mozilla.org's pushlog: ``<repo>/json-pushes?version=2`` (DESIGN §5.2) is
answered here from a pushlog that ``push()`` records, as the pushlog hook
does on the real server.

History is written in-process with Mercurial's memctx API straight into the
store (no working directory, no ``hg commit`` process per changeset), which is
what makes 10,000-changeset benchmark repositories affordable.

Reliability tests inject faults with ``set_fault("error" | "hg-error" | "hang" |
"lie" | "redirect" | "slow-pull")``; refused connections are ``stop()`` and a
later ``start(port=same_port)``. Every repository is also served under
``/mirror/``, where no fault applies: the target of a redirect within the
same origin. ``redirect(path, to)`` makes every request under a path answer
301 to another URL, as hg.mozilla.org does for a moved repository (or as a
hostile server would, to anywhere).

    python -m simulated.hgmo serve --root DIR [--port N]
"""

import functools
import itertools
import json
import random
import re
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

from mercurial import context, encoding, error, hg
from mercurial import ui as uimod
from mercurial.hgweb import hgwebdir_mod
from mercurial.node import bin, hex

from .httpserver import SimulatedService, serve_from_command_line

NULL = "0" * 40
FAULTS = (None, "error", "hg-error", "hang", "lie", "redirect", "slow-pull", "trickle")
MIRROR = "/mirror"
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")  # as the worker validates names
_JSON_PUSHES_PARAMETERS = {"version", "startID", "endID", "full"}
_AREAS = ("browser", "toolkit", "devtools/client", "mobile/android")  # where benchmark strings live
_CONFIG = {
    (b"ui", b"nontty"): b"true",
    (b"ui", b"report_untrusted"): b"false",
    (b"progress", b"disable"): b"true",
    # A rescan per request costs ~25 ms with 300 repositories; SimulatedHgmo rescans when it needs to.
    (b"web", b"refreshinterval"): b"31536000",
    # The default is a full gc.collect() per request, which costs tens of ms in a test process.
    (b"experimental", b"web.full-garbage-collection-rate"): b"0",
    # Upstream history is written on disk, never pushed over HTTP.
    (b"web", b"deny_push"): b"*",
    # Everything on hg.mozilla.org is public; drafts would also make clones differ.
    (b"phases", b"new-commit"): b"public",
}


def _ui():
    ui = uimod.ui()
    for (section, name), value in _CONFIG.items():
        ui.setconfig(section, name, value, b"simulated-hgmo")
    return ui


def _valid_name(name):
    return isinstance(name, str) and all(_SEGMENT.match(part) for part in name.split("/"))


def _check_name(name):
    if not _valid_name(name):
        raise ValueError(f"bad repository name {name!r}")
    return name


def _utf8(text):
    # changelog.add() transcodes user and description from the locale's encoding, which fails
    # for emoji under an ASCII locale; a localstr carries its UTF-8 form through untouched.
    # Bytes are stored as they are (tests of text that is not UTF-8).
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    return encoding.localstr(data, data)


def _text(local):
    """Mercurial's locale-encoded metadata as the UTF-8 text actually stored."""
    return encoding.fromlocal(local).decode("utf-8", "replace")


class SimulatedHgmo(SimulatedService):
    thread_name = "simulated-hgmo"

    def __init__(self, root):
        super().__init__()
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.hg_requests_seen = 0  # those for Mercurial (clone, pull), not for json-pushes
        self._fault = (None, None)
        self._redirect_to = None
        self._redirects = {}  # path prefix -> URL prefix
        self._pushlog_lock = threading.Lock()
        self._pushlogs = {}  # name -> (file signature, pushes)
        self._hgwebdir = (None, set())  # and the names of the repositories it serves

    @property
    def url(self):
        return self._base_url() + "/"

    def repo_url(self, name):
        return f"{self.url}{name}/"

    def set_fault(self, mode, name=None, redirect_to=None):
        """Fail every request (or only those for repository ``name``) from now on:
        "error" answers 500 ("hg-error" only to hg: json-pushes still works), "hang" answers after
        ``hang_seconds``, "lie" makes json-pushes list a changeset the repository does not have,
        "redirect" answers 302 to ``redirect_to`` followed by the request's path and query
        (``url + "mirror/"`` stays within this server), "slow-pull" answers the request that carries
        the changesets of a clone or pull (getbundle) after ``hang_seconds``, "trickle" answers 200
        and then one byte a second for ``hang_seconds``; None clears."""
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}")
        if (mode == "redirect") != (redirect_to is not None):
            raise ValueError("redirect_to goes with the redirect fault, and only with it")
        self._fault = (mode, name)
        self._redirect_to = redirect_to

    def redirect(self, path, to):
        """Answer every request for ``path`` or under it with 301 to ``to`` plus the rest of the path
        and the query (``redirect("old/de", repo_url("l10n-central/de"))``); ``to`` None stops it."""
        path = path.strip("/")
        if to is None:
            self._redirects.pop(path, None)
        else:
            self._redirects[path] = to

    def _redirected(self, path, environ, start_response):
        for prefix, to in list(self._redirects.items()):
            if path == f"/{prefix}" or path.startswith(f"/{prefix}/"):
                query = environ.get("QUERY_STRING", "")
                location = to + path[len(prefix) + 2 :] + (f"?{query}" if query else "")
                start_response("301 Moved Permanently", [("Location", location), ("Content-Length", "0")])
                return [b""]
        return None

    def __call__(self, environ, start_response):
        self.requests_seen += 1
        path = environ.get("PATH_INFO", "/")
        mirrored = path.startswith(MIRROR + "/")
        if mirrored:  # mounted there, as WSGI says: hgweb builds its links from SCRIPT_NAME
            path = path[len(MIRROR) :]
            environ = dict(environ, SCRIPT_NAME=environ.get("SCRIPT_NAME", "") + MIRROR, PATH_INFO=path)
        path = path.rstrip("/")
        redirected = self._redirects and self._redirected(path, environ, start_response)
        if redirected:
            return redirected
        json_pushes = path.endswith("/json-pushes")
        self.hg_requests_seen += not json_pushes
        name = path[1 : -len("/json-pushes")] if json_pushes else self._repo_of(path)
        mode, only = self._fault
        if mirrored or (only is not None and only != name):
            mode = None
        if mode == "slow-pull" and "cmd=getbundle" in environ.get("QUERY_STRING", ""):
            mode = "hang"
        if mode == "trickle":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return self._trickle()
        if mode == "redirect":
            return self.redirect_elsewhere(self._redirect_to, environ, start_response)
        if mode == "hang" and self._stopping.wait(self.hang_seconds):
            return _json(start_response, "503 Service Unavailable", {"error": "simulated hg.mozilla.org stopped"})
        if mode == "error" or (mode == "hg-error" and not json_pushes):
            return _json(start_response, "500 Internal Server Error", {"error": "simulated failure"})
        if json_pushes:
            return self._json_pushes(name, environ.get("QUERY_STRING", ""), start_response, lie=mode == "lie")
        return self._hgweb(name)(environ, start_response)

    def _trickle(self):
        for _ in range(int(self.hang_seconds)):
            if self._stopping.wait(1):
                return
            yield b" "

    def _hgweb(self, name):
        """Mercurial's hgwebdir for the whole root, rescanned when asked for a repository (or an
        index page) it does not know: tests create repositories while it serves."""
        hgweb, names = self._hgwebdir
        if hgweb is None or name is None or name not in names:
            hgweb = hgwebdir_mod.hgwebdir([(b"/", str(self.root / "**").encode())], baseui=_ui())
            self._hgwebdir = hgweb, {path.decode() for path, _ in hgweb.repos}
        return hgweb

    def _is_repo(self, name):
        return _valid_name(name) and (self.root / name / ".hg").is_dir()

    def _repo_of(self, path):
        parts = [part for part in path.split("/") if part]
        names = ("/".join(parts[:cut]) for cut in range(len(parts), 0, -1))
        return next((name for name in names if self._is_repo(name)), None)

    def _json_pushes(self, name, query_string, start_response, lie=False):
        if not self._is_repo(name):
            return _json(start_response, "404 Not Found", {"error": f"repository {name!r} not found"})
        with self._pushlog_lock:
            pushes = self._pushes(name)
        last = pushes[-1]["id"] if pushes else 0
        query = parse_qs(query_string, keep_blank_values=True)
        try:
            if set(query) - _JSON_PUSHES_PARAMETERS:
                raise ValueError(f"parameters not simulated: {sorted(set(query) - _JSON_PUSHES_PARAMETERS)}")
            if query.get("version") != ["2"]:
                raise ValueError("only version=2 is simulated")
            start, end = (query.get(key, [str(default)])[-1] for key, default in (("startID", 0), ("endID", last)))
            if not all(re.fullmatch(r"[0-9]{1,18}", bound) for bound in (start, end)):
                raise ValueError(f"startID and endID must be push ids, not {start!r} and {end!r}")
            start, end = int(start), int(end)
        except ValueError as error:
            return _json(start_response, "400 Bad Request", {"error": str(error)})
        # Like hg.mozilla.org, the presence of "full" asks for details, whatever its value.
        full = "full" in query
        selected = [push for push in pushes if start < push["id"] <= end]
        repo = self._open(name).unfiltered() if full and selected else None
        answer = {}
        for push in selected:
            nodes = push["changesets"]
            if lie and push is selected[-1]:
                nodes = nodes + [secrets.token_hex(20)]
            changesets = [_describe(repo, node) for node in nodes] if repo is not None else list(nodes)
            answer[str(push["id"])] = {"changesets": changesets, "date": push["date"], "user": push["user"]}
        return _json(start_response, "200 OK", {"lastpushid": last, "pushes": answer})

    def _open(self, name):
        return hg.repository(_ui(), str(self.root / _check_name(name)).encode())

    def create_repo(self, name):
        path = self.root / _check_name(name)
        if path.exists():
            raise FileExistsError(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        hg.repository(_ui(), str(path).encode(), create=True)
        return path

    def commit(self, name, files, message="A change", user="Someone <someone@example.com>", branch=None,
               parents=None, date=None):
        """Commit ``files`` ({path: bytes, or None to delete}) on top of ``parents`` (default: the
        head of ``branch``; two nodes make a merge). Returns the new node as 40 hex."""
        repo = self._open(name).unfiltered()
        with repo.wlock(), repo.lock(), repo.transaction(b"simulated-commit"):
            return _commit(repo, files, message, user, branch, parents, date)

    def push(self, name, user="pusher@example.com", date=None):
        """Record a push of every changeset not in an earlier push; returns its push id."""
        with self._pushlog_lock:
            return self._append_pushes(name, [self._unpushed(name)], user, date)[0]

    def record_push(self, name, changesets, user="pusher@example.com", date=None):
        """Record a push of exactly ``changesets``, ``user`` and ``date``, even what a real pushlog
        could never hold (tests of what upstream cannot legally produce); returns its push id."""
        with self._pushlog_lock:
            return self._append_pushes(name, [list(changesets)], user, date)[0]

    def commit_and_push(self, name, files, **commit_options):
        node = self.commit(name, files, **commit_options)
        return node, self.push(name)

    def build_linear_history(self, name, count, files_per_changeset=3, merges_every=None, pushes=1):
        """Append ``count`` changesets to ``name`` in one transaction and record them as pushes:
        ``pushes`` is a number of pushes of about equal size, or the size of each push in order
        (see ``reference_push_sizes``). With ``merges_every=N``, every Nth changeset merges a
        one-changeset side branch forked from the parent of the tip. Returns the new nodes in order."""
        repo = self._open(name).unfiltered()
        nodes = []
        started = int(time.time()) - count
        with repo.wlock(), repo.lock(), repo.transaction(b"simulated-history"):
            # Otherwise each commit reloads every filelog it touches from disk: a third of the time.
            # Keyed by path alone, so that a merge reads the very filelog being written.
            load = repo.file
            filelog = functools.cache(lambda path: load(path, writable=True))
            repo.file = lambda path, **options: filelog(path)
            try:
                tip = hex(repo.changelog.tip()).decode() if len(repo) else None
                while len(nodes) < count:
                    i = len(nodes)
                    files = {f"{_AREAS[n % 4]}/locales/en-US/strings{n % 400}.ftl": f"key{n} = Value {i}\n".encode()
                             for n in range(i * files_per_changeset, (i + 1) * files_per_changeset)}
                    date = (started + i, 0)
                    if merges_every and i % merges_every == 0 and len(nodes) >= 2 and count - i >= 2:
                        side = _commit(repo, files, f"Side {i}", "Dev <dev@example.com>", None, [nodes[-2]], date)
                        nodes.append(side)
                        message, files, parents = f"Merge {i}", {}, [tip, side]
                    else:
                        message, parents = f"Change {i}\n\nBug {100000 + i}", [tip] if tip else []
                    tip = _commit(repo, files, message, "Dev <dev@example.com>", None, parents, date)
                    nodes.append(tip)
            finally:
                del repo.file
        with self._pushlog_lock:
            new = self._unpushed(name)
            if isinstance(pushes, int):
                size = len(new) / max(1, pushes)
                chunks = [new[round(k * size) : round((k + 1) * size)] for k in range(max(1, pushes))]
            else:
                if sum(pushes) != len(new):
                    raise ValueError(f"push sizes add up to {sum(pushes)}, not {len(new)}")
                ends = list(itertools.accumulate(pushes))
                chunks = [new[end - size : end] for size, end in zip(pushes, ends, strict=True)]
            self._append_pushes(name, [chunk for chunk in chunks if chunk], "pusher@example.com", None)
        return nodes

    def pushlog(self, name):
        """The recorded pushes, oldest first: {"id", "date", "user", "changesets": [40 hex, DAG order]}."""
        with self._pushlog_lock:
            return [dict(push, changesets=list(push["changesets"])) for push in self._pushes(name)]

    def _pushlog_path(self, name):
        return self.root / _check_name(name) / ".hg" / "pushlog.jsonl"

    def _pushes(self, name):
        """The cached pushlog, re-read only when the file changed (another process may push)."""
        path = self._pushlog_path(name)
        signature = _signature(path)
        cached = self._pushlogs.get(name)
        if cached is None or cached[0] != signature:
            lines = path.read_text("utf-8").splitlines(keepends=True) if signature else []
            # A line still being appended by another process has no newline yet.
            cached = signature, [json.loads(line) for line in lines if line.endswith("\n")]
            self._pushlogs[name] = cached
        return cached[1]

    def _unpushed(self, name):
        """Changesets in no push yet, in revision (so DAG) order."""
        changelog = self._open(name).unfiltered().changelog
        pushed = {node for push in self._pushes(name) for node in push["changesets"]}
        return [node for node in (hex(changelog.node(rev)).decode() for rev in changelog) if node not in pushed]

    def _append_pushes(self, name, chunks, user, date):
        if not chunks or not all(chunks):
            raise ValueError(f"nothing new to push in {name}")
        pushes = list(self._pushes(name))
        for changesets in chunks:
            pushes.append({"id": len(pushes) + 1, "date": int(time.time()) if date is None else date,
                           "user": user, "changesets": changesets})
        path = self._pushlog_path(name)
        with path.open("a", encoding="utf-8") as log:
            log.writelines(json.dumps(push) + "\n" for push in pushes[-len(chunks) :])
        self._pushlogs[name] = (_signature(path), pushes)
        return [push["id"] for push in pushes[-len(chunks) :]]


def reference_push_sizes(changesets, pushes, seed=0):
    """Push sizes shaped like a real localization repository's: about one push in a hundred holds
    a few dozen changesets, the others one or two (so ``pushes`` must be at least about half of
    ``changesets``). The same arguments give the same sizes."""
    rng = random.Random(seed)
    sizes = [rng.randint(12, 48) for _ in range(pushes // 100)]
    small = pushes - len(sizes)
    doubles = changesets - sum(sizes) - small
    if not 0 <= doubles <= small:
        raise ValueError(f"{changesets} changesets do not make {pushes} pushes of one or two, with a few dozens")
    sizes += [2] * doubles + [1] * (small - doubles)
    rng.shuffle(sizes)
    return sizes


def _signature(path):
    stat = path.stat() if path.exists() else None
    return stat and (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _commit(repo, files, message, user, branch, parents, date):
    if parents is None:
        head = repo.branchtip((branch or "default").encode("utf-8"), ignoremissing=True)
        parents = [hex(head or repo.changelog.tip())] if len(repo) else []
    parents = [p.decode() if isinstance(p, bytes) else p for p in parents]
    p1, p2 = (parents + [NULL, NULL])[:2]
    if branch is None:
        # As after "hg update p1": the new changeset stays on its first parent's branch.
        branch = _text(repo[bin(p1)].branch()) if p1 != NULL else "default"
    contents = {path if isinstance(path, bytes) else path.encode("utf-8"): data for path, data in files.items()}
    if p2 != NULL:
        contents = _merged(repo, bin(p1), bin(p2), contents)

    def file_context(repo, memctx, path):
        data = contents[path]
        return None if data is None else context.memfilectx(repo, memctx, path, data)

    memctx = context.memctx(
        repo, [bin(p1), bin(p2)], _utf8(message), sorted(contents), file_context,
        user=_utf8(user), date=(date, 0) if isinstance(date, (int, float)) else date,
        extra={b"branch": branch.encode("utf-8")},
    )
    return hex(memctx.commit()).decode()


def _merged(repo, p1, p2, contents):
    """``contents`` plus what a clean merge takes from p2: files only p2's side changed.

    memctx builds on p1's manifest alone, so without this a merge would silently revert p2."""
    base = repo[repo.changelog.ancestor(p1, p2)].manifest()
    side = repo[p2]
    merged = dict(contents)
    for path, ((node1, _), (node2, _)) in repo[p1].manifest().diff(side.manifest()).items():
        if path not in merged and base.get(path) == node1:
            merged[path] = None if node2 is None else side[path].data()
    return merged


def _describe(repo, node):
    """A changeset as json-pushes shows it with full=1."""
    try:
        ctx = repo[bin(node)]
    except error.RepoLookupError:  # the "lie" fault's invented changeset
        return {"node": node, "author": "Nobody <nobody@example.com>", "desc": "", "branch": "default",
                "tags": [], "files": [], "parents": [NULL]}
    return {
        "node": node,
        "author": _text(ctx.user()),
        "desc": _text(ctx.description()),
        "branch": _text(ctx.branch()),
        "tags": [_text(tag) for tag in ctx.tags()],
        "files": [path.decode("utf-8", "replace") for path in ctx.files()],
        "parents": [parent.hex().decode() for parent in ctx.parents()],  # a root has the null parent
    }


def _json(start_response, status, value):
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def main():
    serve_from_command_line(SimulatedHgmo, "python -m simulated.hgmo", __doc__.split("\n\n")[0], "directory holding the upstream repositories")


if __name__ == "__main__":
    main()
