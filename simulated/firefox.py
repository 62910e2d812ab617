"""A Firefox-shaped localization world, as real git repositories, deterministic from a seed.

Shaped like Firefox's strings since 2024:

- the en-US reference, ``mozilla-l10n/firefox-l10n-source``: Fluent (``.ftl``:
  messages, terms, attributes, variables, selectors), ``.properties``, ``.dtd``
  and ``.ini`` files holding every message any channel ships, and
  ``_data/<channel>.json`` for ``main``, ``beta``, ``release``, ``esr115``,
  ``esr140`` and ``esr153``: a JSON map of file path to the message ids that
  channel ships. Most messages are shared by all channels; older channels lack
  some newer files and messages and still ship some that newer ones removed.
- the locales, ``mozilla-l10n/firefox-l10n``: a top-level folder per locale
  (``<locale>/<path>``), each 60-100 % complete, with whole files and single
  messages missing, a few files that fail to parse and a few obsolete messages.

Message ids are what ``moz-l10n compare`` reads from a file (``Strings.Key``
for an ``.ini``; a Fluent message's attributes belong to it), so the real
command over a checkout of these repositories is the truth for them.

``generate()`` is pure; ``World`` keeps the state of both repositories as
pushes change it. ``publish()`` writes both to a simulated GitHub with one
``git fast-import`` each; ``push_locale()`` and ``push_reference_update()``
make the pushes tests and benchmarks need. ``World.expected()`` says what
``moz-l10n compare`` finds for a locale and channel (the tests hold it to the
real command).
"""

import json
import random
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SOURCE = "mozilla-l10n/firefox-l10n-source"
L10N = "mozilla-l10n/firefox-l10n"
# Oldest first: a channel ships what was added by its age and not removed yet.
CHANNELS = ("esr115", "esr140", "esr153", "release", "beta", "main")
AGE = {channel: age for age, channel in enumerate(CHANNELS)}
ALWAYS = len(CHANNELS)  # "removed" at this age: never removed
# Real Firefox locale codes; a world of N locales takes the first N.
LOCALE_CODES = (
    "de", "fr", "it", "ja", "es-ES", "pl", "ru", "zh-CN", "pt-BR", "nl", "sv-SE", "cs", "hu", "fi", "da", "nb-NO",
    "tr", "uk", "ko", "zh-TW", "el", "ro", "sk", "ca", "ca-valencia", "ja-JP-mac", "sr", "hsb", "dsb", "fy-NL",
    "ach", "af", "an", "ar", "ast", "az", "be", "bg", "bn", "br", "bs", "cak", "cy", "en-CA", "en-GB", "eo", "es-AR",
    "es-CL", "es-MX", "et", "eu", "fa", "ff", "ga-IE", "gd", "gl", "gn", "gu-IN", "he", "hi-IN", "hr", "hy-AM", "ia",
    "id", "is", "ka", "kab", "kk", "km", "kn", "lij", "lo", "lt", "ltg", "lv", "meh", "mk", "mr", "ms", "my", "ne-NP",
    "nn-NO", "oc", "pa-IN", "pt-PT", "rm", "sat", "sc", "scn", "sco", "si", "skr", "sl", "son", "sq", "szl", "ta",
    "te", "tg", "th", "tl", "trs", "ur", "uz", "vi", "wo", "xh",
)
FORMATS = (("ftl", 70), ("properties", 15), ("dtd", 10), ("ini", 5))  # Firefox's share of files, roughly
_FOLDERS = {
    "ftl": ("browser/browser", "browser/browser/preferences", "toolkit/toolkit/about", "toolkit/toolkit/global",
            "devtools/client/netmonitor", "mobile/android/mobile/android/aboutConfig", "browser/browser/newtab"),
    "properties": ("browser/chrome/browser", "toolkit/chrome/global", "dom/chrome/dom", "toolkit/chrome/mozapps"),
    "dtd": ("browser/chrome/browser", "toolkit/chrome/global", "toolkit/chrome/mozapps/extensions"),
    "ini": ("toolkit/crashreporter", "browser/updater", "toolkit/mozapps/update"),
}
_WORDS = ("open", "save", "close", "print", "reload", "bookmark", "history", "search", "tab", "window", "privacy",
          "update", "download", "addon", "theme", "sync", "account", "password", "cookie", "permission", "toolbar",
          "sidebar", "reader", "screenshot", "translation", "profile", "restore", "import", "export", "setting")
_BRAND = (("-brand-shorter-name", "Firefox"), ("-brand-short-name", "Firefox"),
          ("-brand-full-name", "Mozilla Firefox"), ("-brand-product-name", "Firefox"),
          ("-vendor-short-name", "Mozilla"), ("trademarkInfo", "Firefox and the Firefox logos are trademarks."))
BRAND_PATH = "browser/branding/official/brand.ftl"
_ACCENTS = str.maketrans("aeiouAEIOU", "áéíóúÁÉÍÓÚ")
_LICENSE = "This Source Code Form is subject to the terms of the Mozilla Public License, v. 2.0."
_EPOCH = 1_767_225_600  # commit times start here (2026-01-01), one minute apart: same seed, same commits


@dataclass
class Message:
    id: str
    text: str
    shape: str  # ftl: "plain", "attributes", "variable", "term-ref", "select", "term"; else "plain"
    introduced: int = 0  # the age of the first channel shipping it
    removed: int = ALWAYS  # the age of the first channel no longer shipping it

    def in_channel(self, channel):
        return self.introduced <= AGE[channel] < self.removed


@dataclass
class ReferenceFile:
    path: str
    format: str
    messages: list

    def ids(self, channel):
        return [m.id for m in self.messages if m.in_channel(channel)]


@dataclass
class Locale:
    code: str
    translations: dict  # path -> {message id: text}; a path absent is a missing file
    broken: set = field(default_factory=set)  # paths whose file does not parse
    extra_files: dict = field(default_factory=dict)  # path -> {id: text}: files en-US no longer has


@dataclass(frozen=True)
class Expected:
    """What ``moz-l10n compare`` reports for one locale and channel, and what it means."""

    missing: dict  # path -> [ids], in the channel file's order (a missing file lists all its ids)
    errors: tuple  # paths that fail to parse
    total: int
    changed: int  # present and parsed
    obsolete: int  # ids the locale has in the channel's files that the channel does not ship

    @property
    def completion(self):
        return int(self.changed * 100 / self.total)


class World:
    """Both repositories' content, changed by the pushes made on it."""

    def __init__(self, seed, reference, locales):
        self.seed = seed
        self.reference = reference  # path -> ReferenceFile, in path order
        self.locales = locales  # code -> Locale
        self.rng = random.Random(f"{seed}:pushes")
        self.commits = 0
        self.pushes = 0

    # --- what is in the repositories ------------------------------------------

    def channel_data(self, channel):
        """``_data/<channel>.json`` as a mapping: path -> ids, files with no id in that channel left out."""
        data = {}
        for path, ref in self.reference.items():
            ids = ref.ids(channel)
            if ids:
                data[path] = ids
        return data

    def reference_files(self):
        """{path: bytes} of the whole reference repository."""
        files = {"README.md": b"# Firefox en-US strings (simulated)\n"}
        files.update({path: render(ref.format, ref.messages) for path, ref in self.reference.items()})
        files.update({f"_data/{channel}.json": self.data_file(channel) for channel in CHANNELS})
        return files

    def data_file(self, channel):
        return (json.dumps(self.channel_data(channel), indent=2, ensure_ascii=False) + "\n").encode()

    def locale_files(self, code):
        """{path: bytes} of one locale, paths without the locale folder."""
        locale = self.locales[code]
        files = {path: self._locale_file(locale, path) for path in locale.translations}
        for path, translated in locale.extra_files.items():
            files[path] = render(_format_of(path), [Message(i, t, "plain") for i, t in translated.items()])
        return files

    def l10n_files(self):
        """{path: bytes} of the whole locales repository."""
        files = {"README.md": b"# Firefox localizations (simulated)\n"}
        for code in self.locales:
            files.update({f"{code}/{path}": content for path, content in self.locale_files(code).items()})
        return files

    def _locale_file(self, locale, path):
        ref = self.reference[path]
        translated = locale.translations[path]
        shapes = {m.id: m for m in ref.messages}
        messages = [Message(m.id, translated[m.id], m.shape) for m in ref.messages if m.id in translated]
        messages += [Message(i, t, "plain") for i, t in translated.items() if i not in shapes]  # obsolete ones
        content = render(ref.format, messages)
        if path in locale.broken:
            content += _BROKEN[ref.format]
        return content

    # --- what moz-l10n compare finds ------------------------------------------

    def expected(self, code, channel="main"):
        locale = self.locales[code]
        missing, errors, total, changed, obsolete = {}, [], 0, 0, 0
        for path, ids in self.channel_data(channel).items():
            total += len(ids)
            if path in locale.broken:
                errors.append(path)
                continue
            translated = locale.translations.get(path)
            if translated is None:
                missing[path] = ids
                continue
            lacking = [i for i in ids if i not in translated]
            if lacking:
                missing[path] = lacking
            changed += len(ids) - len(lacking)
            obsolete += len(set(translated) - set(ids))
        return Expected(missing, tuple(errors), total, changed, obsolete)

    # --- changes ----------------------------------------------------------------

    def translate(self, code, files=3):
        """Translate some missing messages (or a whole missing file) in ``files`` files of one locale:
        its numbers change. Returns {path in the repository: bytes}."""
        locale = self.locales[code]
        main = self.channel_data("main")
        lacking = sorted(path for path, ids in main.items() if path not in locale.broken
                         and any(i not in locale.translations.get(path, {}) for i in ids))
        chosen = self.rng.sample(lacking, min(files, len(lacking)))
        for path in chosen:
            translated = locale.translations.setdefault(path, {})
            todo = [i for i in main[path] if i not in translated]
            for message_id in todo[: max(1, len(todo) // 2)]:
                translated[message_id] = _translate(self._text(path, message_id), code)
        if len(chosen) < files:  # nothing left to translate: the rest changes wording
            return {**self._files_of(code, chosen), **self.reword(code, files - len(chosen))}
        return self._files_of(code, chosen)

    def reword(self, code, files=3):
        """Change the wording of every message in ``files`` files of one locale, adding or removing no
        id: no number of it changes. Returns {path in the repository: bytes}."""
        locale = self.locales[code]
        present = sorted(path for path, translated in locale.translations.items()
                         if translated and path not in locale.broken)
        chosen = self.rng.sample(present, min(files, len(present)))
        self.pushes += 1
        for path in chosen:
            translated = locale.translations[path]
            for message_id in translated:
                translated[message_id] = _reworded(translated[message_id], self.pushes)
        return self._files_of(code, chosen)

    def update_reference(self, files=5, added=2):
        """Add ``added`` messages to each of ``files`` files shipped by every channel, in every
        ``_data/*.json`` (as the update job does for strings uplifted to every channel): every locale
        of every channel lacks them. Returns {path in the repository: bytes}."""
        shared = sorted(path for path, ref in self.reference.items()
                        if all(ref.ids(channel) for channel in CHANNELS) and ref.format == "ftl")
        chosen = self.rng.sample(shared, min(files, len(shared)))
        self.pushes += 1
        for path in chosen:
            ref = self.reference[path]
            stem = _stem(path)
            for n in range(added):
                ref.messages.append(Message(f"{stem}-new{self.pushes}-{n}", f"New string {self.pushes} {n}",
                                            "plain"))
        changed = {path: render(self.reference[path].format, self.reference[path].messages) for path in chosen}
        changed.update({f"_data/{channel}.json": self.data_file(channel) for channel in CHANNELS})
        return changed

    def _files_of(self, code, paths):
        return {f"{code}/{path}": self._locale_file(self.locales[code], path) for path in paths}

    def _text(self, path, message_id):
        return next(m.text for m in self.reference[path].messages if m.id == message_id)

    def next_date(self):
        self.commits += 1
        return _EPOCH + 60 * self.commits


# --- generating -------------------------------------------------------------------


def generate(files=100, messages=5000, locales=30, seed=0):
    """A world of about ``files`` reference files holding ``messages`` messages (every channel's,
    together), and the first ``locales`` of LOCALE_CODES. The reference depends on the seed and
    sizes only, and each locale on the seed, its code and the reference: a world of 3 locales has
    the first 3 of a world of 30, identical."""
    if not 1 <= locales <= len(LOCALE_CODES):
        raise ValueError(f"between 1 and {len(LOCALE_CODES)} locales")
    if files < 4 or messages < files * 3:
        raise ValueError("at least 4 files and 3 messages per file")
    reference = _reference(random.Random(f"{seed}:reference"), files, messages)
    codes = LOCALE_CODES[:locales]
    return World(seed, reference, {code: _locale(random.Random(f"{seed}:{code}"), code, LOCALE_CODES.index(code),
                                                 reference) for code in codes})


def _reference(rng, files, messages):
    formats = [name for name, weight in FORMATS for _ in range(weight)]
    kinds = ["ftl"] + [name for name, _ in FORMATS] + [rng.choice(formats) for _ in range(files - 5)]
    sizes = _sizes(rng, files, messages - len(_BRAND))
    reference = {}
    brand = [Message(i, t, "term" if i.startswith("-") else "plain") for i, t in _BRAND]
    reference[BRAND_PATH] = ReferenceFile(BRAND_PATH, "ftl", brand)
    for n, (kind, size) in enumerate(zip(kinds[1:], sizes[1:], strict=True)):
        path = f"{rng.choice(_FOLDERS[kind])}/{_WORDS[n % len(_WORDS)]}{n}.{kind}"
        reference[path] = ReferenceFile(path, kind, [_message(rng, kind, path, i) for i in range(size)])
    # Files newer channels added, and files they removed (still shipped by older ones).
    paths = sorted(set(reference) - {BRAND_PATH})
    median = sorted(len(reference[path].messages) for path in paths)[len(paths) // 2]
    changed_files = rng.sample([path for path in paths if len(reference[path].messages) <= median],
                               max(1, files // 20) + max(1, files // 30))
    for path in changed_files[: max(1, files // 20)]:
        introduced = rng.randint(1, ALWAYS - 1)
        for message in reference[path].messages:
            message.introduced = introduced
    for path in changed_files[max(1, files // 20):]:
        removed = rng.randint(1, ALWAYS - 1)
        for message in reference[path].messages:
            message.removed = removed
    # Single messages: about 5 % newer than the oldest channel, 3 % removed by a newer one.
    for path in paths:
        for message in reference[path].messages:
            draw = rng.random()
            if draw < 0.05:
                message.introduced = max(message.introduced, rng.randint(1, ALWAYS - 1))
            elif draw < 0.08 and message.removed == ALWAYS and message.introduced < ALWAYS - 2:
                message.removed = rng.randint(message.introduced + 1, ALWAYS - 1)
    return dict(sorted(reference.items()))


def _sizes(rng, files, messages):
    """``files`` sizes summing to ``messages``: a few big files, many small ones, as Firefox has."""
    weights = [rng.lognormvariate(0, 0.9) for _ in range(files)]
    scale = (messages - 3 * files) / sum(weights)
    sizes = [3 + int(w * scale) for w in weights]
    for i in range(messages - sum(sizes)):  # what rounding left over
        sizes[i % files] += 1
    return sizes


def _stem(path):
    return Path(path).stem.lower()


def _message(rng, kind, path, i):
    word = _WORDS[(i * 7 + len(path)) % len(_WORDS)]
    text = f"{word.capitalize()} {rng.choice(_WORDS)} {i}"
    stem = _stem(path)
    if kind == "ftl":
        shape = rng.choices(("plain", "attributes", "variable", "term-ref", "select", "term"),
                            (60, 15, 10, 6, 5, 4))[0]
        prefix = "-" if shape == "term" else ""
        return Message(f"{prefix}{stem}-{word}-{i}", text, shape)
    if kind == "properties":
        suffix = rng.choice(("label", "accesskey", "tooltip", "title"))
        return Message(f"{stem}.{word}{i}.{suffix}", text if suffix != "accesskey" else word[0].upper(), "plain")
    if kind == "dtd":
        return Message(f"{stem}.{word}{i}.label", text, "plain")
    return Message(f"Strings.{word.capitalize()}{i}", text, "plain")  # ini: [Strings] section, as moz-l10n names it


def _locale(rng, code, index, reference):
    """One locale: the first of LOCALE_CODES complete; the others 64-99 % of main translated,
    whole files missing below 90 %, a file failing to parse in one locale of five, obsolete
    messages in one of four."""
    main = {path: ref.ids("main") for path, ref in reference.items()}
    total = sum(len(ids) for ids in main.values())
    target = 1.0 if index == 0 else rng.uniform(0.64, 0.99)
    translations = {}
    for path, ref in reference.items():
        # Messages only older channels ship were translated when they were current, most of them.
        translations[path] = {m.id: _translate(m.text, code) for m in ref.messages
                              if m.in_channel("main") or rng.random() < 0.9}
    locale = Locale(code, translations)
    if index == 0:
        return locale
    small = [path for path, ids in main.items() if 0 < len(ids) <= total * 0.03 and path != BRAND_PATH]
    budget = int((1 - target) * total)
    if index % 5 == 2 and small:
        broken = rng.choice([p for p in small if reference[p].format in ("ftl", "dtd")] or small)
        locale.broken.add(broken)
        budget -= len(main[broken])
        small.remove(broken)
    if target < 0.9:
        for path in rng.sample(small, min(len(small), rng.randint(1, 3))):
            if len(main[path]) <= budget:
                del translations[path]
                budget -= len(main[path])
    # Newer messages are the likeliest to be missing.
    candidates = [(path, m.id) for path, ref in reference.items() if path in translations and path not in locale.broken
                  for m in ref.messages if m.in_channel("main")]
    candidates.sort(key=lambda pair: rng.random() - (0.5 if _newer(reference, *pair) else 0))
    for path, message_id in candidates[: max(0, budget)]:
        del translations[path][message_id]
    if index % 4 == 1:  # strings en-US removed long ago, still in the locale's files
        for path in rng.sample(sorted(p for p in translations if p not in locale.broken), 2):
            translations[path][f"{_stem(path)}-obsolete-{index}"] = _translate("Old string", code)
    if index % 6 == 3:  # a whole file en-US no longer has
        locale.extra_files["browser/browser/oldFeature.ftl"] = {"old-feature-title": _translate("Old feature", code)}
    return locale


def _newer(reference, path, message_id):
    return any(m.id == message_id and m.introduced > 0 for m in reference[path].messages)


def _translate(text, code):
    return f"{text.translate(_ACCENTS)} [{code}]"


def _reworded(text, push):
    return f"{text.split(' ~')[0]} ~{push}"


def _format_of(path):
    return path.rsplit(".", 1)[-1]


# --- rendering ----------------------------------------------------------------------

# What makes a file fail to parse in each format (moz-l10n raises on each).
_BROKEN = {
    "ftl": b"broken-entry = { $unclosed \n",
    "dtd": b'<!ENTITY broken.label "never closed>\n',
    "properties": b"",  # .properties has no syntax error moz-l10n reports; never chosen
    "ini": b"",
}


def render(kind, messages):
    """A file of ``kind`` holding ``messages`` (their shape decides the Fluent syntax)."""
    if kind == "ftl":
        return _fluent(messages)
    if kind == "properties":
        lines = [f"# {_LICENSE}", ""] + [f"{m.id} = {_with_placeholder(m)}" for m in messages]
    elif kind == "dtd":
        lines = [f"<!-- {_LICENSE} -->", ""] + [f'<!ENTITY {m.id} "{_escape_dtd(m.text)}">' for m in messages]
    elif kind == "ini":
        lines = [f"; {_LICENSE}", "", "[Strings]"] + [f"{m.id.removeprefix('Strings.')}={m.text}" for m in messages]
    else:
        raise ValueError(f"unknown format {kind!r}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _with_placeholder(message):
    return message.text + (" %S" if message.id.endswith(".title") else "")


def _escape_dtd(text):
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _fluent(messages):
    out = [f"# {_LICENSE}", "", "## Strings", ""]
    for m in messages:
        if m.shape == "attributes":
            out += [f"{m.id} =", f"    .label = {m.text}", f"    .accesskey = {m.text[0]}"]
        elif m.shape == "variable":
            out.append(f"{m.id} = {m.text} {{ $count }}")
        elif m.shape == "term-ref":
            out.append(f"{m.id} = {m.text} {{ -brand-short-name }}")
        elif m.shape == "select":
            out += [f"{m.id} =", "    { $count ->", f"        [one] {m.text}", f"       *[other] {m.text} {{ $count }}",
                    "    }"]
        else:
            out.append(f"{m.id} = {m.text}")
    return ("\n".join(out) + "\n").encode("utf-8")


# --- git repositories ---------------------------------------------------------------


def publish(github, world, source=SOURCE, l10n=L10N):
    """Commit the world to ``github`` (creating the repositories if needed), one commit each;
    returns (reference commit, locales commit)."""
    for name in (source, l10n):
        if not github.git_dir(name).is_dir():
            github.create_repo(name)
    reference = github.commit(source, world.reference_files(), message="Update en-US strings",
                              author="l10n-bot <l10n-bot@example.com>", date=world.next_date())
    locales = github.commit(l10n, world.l10n_files(), message=f"Localizations: {', '.join(world.locales)}",
                            author="Pontoon <pontoon@example.com>", date=world.next_date())
    return reference, locales


def push_locale(github, world, code, files=3, reword=False, l10n=L10N):
    """A Pontoon commit to one locale changing ``files`` files: translating missing messages (its
    numbers change) or, with ``reword``, only the wording (no number changes). Returns (before, after)."""
    before = github.tip(l10n)
    changed = world.reword(code, files) if reword else world.translate(code, files)
    after = github.commit(l10n, changed, message=f"Pontoon: Update {code} localization",
                          author="Pontoon <pontoon@example.com>", date=world.next_date())
    return before, after


def push_reference_update(github, world, files=5, source=SOURCE):
    """The update job's commit: new messages in ``files`` files and every ``_data/*.json``. Returns (before, after)."""
    before = github.tip(source)
    after = github.commit(source, world.update_reference(files), message="Update strings and channel data",
                          author="l10n-bot <l10n-bot@example.com>", date=world.next_date())
    return before, after


def checkout(git_dir, revision, destination):
    """The files of ``revision`` under ``destination`` (a plain directory, as ``git archive`` gives them)."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as archive:
        subprocess.run(["git", "--git-dir", str(git_dir), "archive", "--format=tar", revision], stdout=archive,
                       check=True, timeout=600)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(destination, filter="data")
    return destination


def moz_l10n_executable():
    # The command in this interpreter's environment, whether or not that is on PATH.
    return str(Path(sys.executable).with_name("moz-l10n"))


def moz_l10n_compare(source_file, locale_dirs):
    """Run the real ``moz-l10n compare --json --source FILE DIRS``; returns its JSON:
    {locale: {"errors": {path: message} or None, "missing": {path: [ids]} or None}}."""
    command = [moz_l10n_executable(), "compare", "--json", "--source", str(source_file), *map(str, locale_dirs)]
    process = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if process.returncode != 0:
        raise RuntimeError(f"moz-l10n compare failed ({process.returncode}): {process.stderr[-2000:]}")
    return json.loads(process.stdout)
