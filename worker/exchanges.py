"""The names of the upstream exchanges the worker consumes, and nothing else.

Dependency-free on purpose: the simulated upstreams (``simulated/``) publish
to these names without importing the handlers that consume them.
"""

HGPUSHES = "exchange/hgpushes/v2"  # hg.mozilla.org
TASK_COMPLETED = "exchange/taskcluster-queue/v1/task-completed"  # Taskcluster
GITHUB_WEBHOOKS = "exchange/github-webhooks/v1"  # GitHub's webhooks, republished by Mozilla's tooling
TASKCLUSTER_GITHUB = "exchange/taskcluster-github/v1/push"  # Taskcluster's GitHub integration

# What each carries, in the words of ``consume-pulse --help``.
CARRIES = {
    HGPUSHES: "hg.mozilla.org pushes and new repositories",
    TASK_COMPLETED: "compare-locales task completions, on the main broker and on each of TASKCLUSTER_EXTRA_SOURCES",
    GITHUB_WEBHOOKS: "GitHub pushes, as webhooks",
    TASKCLUSTER_GITHUB: "GitHub pushes, as Taskcluster's GitHub integration announces them",
}
ALL = tuple(CARRIES)
