"""huggingface_hub's exceptions, said once, in the user's terms, with a stable code."""

from __future__ import annotations

from bllossom_core.errors import BllossomError, ErrorCode, InputError, RemoteError


def model_page(repo_id: str, endpoint: str | None) -> str:
    from huggingface_hub import constants

    return f"{(endpoint or constants.ENDPOINT).rstrip('/')}/{repo_id}"


def offline_error(what: str) -> RemoteError:
    return RemoteError(
        f"Cannot download {what}: HF_HUB_OFFLINE is set, and downloading needs an "
        "internet connection.",
        hint="Unset HF_HUB_OFFLINE on a connected machine, or use a local folder or file.",
        code=ErrorCode.OFFLINE,
    )


def translate(
    exc: BaseException, repo_id: str, *, filename: str | None = None, endpoint: str | None = None
) -> BllossomError:
    """The :class:`BllossomError` for an exception raised by huggingface_hub or its
    HTTP client while reading ``repo_id`` (and ``filename``)."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, BllossomError):
        return exc
    what = f"{filename} from {repo_id}" if filename else repo_id
    if isinstance(exc, HFValidationError):
        return InputError(
            f"{repo_id!r} is not a valid hub id: {exc}",
            hint="A hub id looks like ORG/NAME, for example MLP-KTLim/llama-3-Korean-Bllossom-8B.",
        )
    if isinstance(exc, OfflineModeIsEnabled):
        return offline_error(what)
    if isinstance(exc, GatedRepoError):  # before RepositoryNotFoundError, its parent
        return RemoteError(
            f"{repo_id} is a gated model: its authors require you to accept their licence "
            "before downloading.",
            hint=f"Open {model_page(repo_id, endpoint)}, log in and accept the licence, then "
            "set HF_TOKEN to an access token or run `hf auth login`, and try again.",
            code=ErrorCode.REPO_GATED,
        )
    if isinstance(exc, RevisionNotFoundError):
        return RemoteError(
            f"{repo_id} has no revision (branch, tag or commit) by that name.",
            hint="Check --revision, or leave it out to use the default.",
            code=ErrorCode.REPO_NOT_FOUND,
        )
    if isinstance(exc, RepositoryNotFoundError):
        return RemoteError(
            f"There is no model {repo_id} on the hub (or it is private).",
            hint="Check the spelling (ORG/NAME); for a private model set HF_TOKEN or run "
            "`hf auth login`.",
            code=ErrorCode.REPO_NOT_FOUND,
        )
    if isinstance(exc, EntryNotFoundError):
        return RemoteError(
            f"{repo_id} has no file {filename or ''}.".replace(" .", "."),
            hint="`bllossom pull --list` shows the catalog; on the hub's Files tab you can "
            "see the files a repository has.",
            code=ErrorCode.REMOTE_FILE_NOT_FOUND,
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return RemoteError(
                f"The hub refused the access token while reading {what}.",
                hint="Set HF_TOKEN to a valid token or run `hf auth login` again.",
                code=ErrorCode.AUTH_FAILED,
            )
        return RemoteError(
            f"The hub answered {status or 'an error'} while reading {what}.",
            hint="Try again later.",
            code=ErrorCode.DOWNLOAD_FAILED,
        )
    if isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ProxyError)):
        return RemoteError(
            f"Cannot reach the model hub at {endpoint or constants.ENDPOINT} to download {what}.",
            hint="Check the internet connection (and HTTPS_PROXY if you use a proxy), then "
            "try again; a partial download is kept and continues.",
            code=ErrorCode.OFFLINE,
        )
    if isinstance(exc, httpx2.TransportError):
        return RemoteError(
            f"The connection to the hub broke while downloading {what} ({type(exc).__name__}).",
            hint="Run the same command again: the download continues where it stopped.",
            code=ErrorCode.DOWNLOAD_INTERRUPTED,
        )
    return RemoteError(f"Downloading {what} failed: {exc}.", code=ErrorCode.DOWNLOAD_FAILED)


def hub_exceptions() -> tuple[type[BaseException], ...]:
    """What :func:`translate` knows how to word."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    return (HfHubHTTPError, OfflineModeIsEnabled, httpx2.HTTPError, ValueError)
