"""HTTP to hg.mozilla.org and Taskcluster: every request has a timeout and a size limit.

Network trouble and 5xx answers are transient (retried later); any other
unexpected answer is permanent for the message that caused it.
"""

import json

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import PermanentError, TransientError

MAX_ANSWER_BYTES = 64 * 1024 * 1024


def http_session():
    """A requests session that retries idempotent requests a little, then gives up."""
    session = requests.Session()
    retry = Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504), allowed_methods=("GET",))
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def get_bytes(session, url, params=None, limit=MAX_ANSWER_BYTES, permanent_statuses=None):
    """GET a body of at most ``limit`` bytes, following redirects.

    ``permanent_statuses`` maps HTTP statuses to the reason a caller wants
    in its PermanentError (e.g. 410: "expired").
    """
    try:
        response = session.get(url, params=params, timeout=settings.HTTP_TIMEOUT, stream=True)
        with response:
            if response.status_code >= 500:
                raise TransientError(f"GET {url}: HTTP {response.status_code}")
            if response.status_code != 200:
                reason = (permanent_statuses or {}).get(response.status_code, f"HTTP {response.status_code}")
                raise PermanentError(f"GET {url}: {reason}")
            body = response.raw.read(limit + 1, decode_content=True)
    except requests.exceptions.RetryError as error:
        raise TransientError(f"GET {url}: server kept failing ({error})") from None
    except (requests.RequestException, OSError) as error:
        raise TransientError(f"GET {url}: {type(error).__name__}") from None
    if len(body) > limit:
        raise PermanentError(f"GET {url}: answer larger than {limit} bytes")
    return body


def get_json(session, url, params=None):
    body = get_bytes(session, url, params)
    try:
        return json.loads(body)
    except ValueError:
        raise PermanentError(f"GET {url}: answer is not JSON") from None
