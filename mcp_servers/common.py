"""What the four MCP servers share: the server class with the product's conventions, argument
types, tool annotations, and the runner.

Conventions every server follows (`VocServer`):
- unknown arguments are refused (every tool's argument model forbids extras, and its input schema
  says `additionalProperties: false`);
- errors are plain sentences: a domain error keeps its message, invalid arguments are listed by
  name, anything unexpected is logged and answered "内部错误" without internals;
- a data directory without data (no voc.db, no chroma/) is an error that names the directory;
- `serverInfo.version` is the product's version.
One paging vocabulary: `limit` (how many), `offset` (how many to skip) and `cursor` (a page's
`next_cursor`, where a tool offers it).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.fastmcp.tools import Tool
from mcp.server.fastmcp.utilities.func_metadata import ArgModelBase
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ContentBlock, ToolAnnotations
from pydantic import AliasChoices, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp

from voc import __version__
from voc.auth import BearerGuard
from voc.config import Settings
from voc.contracts import SUMMARY_FILE, RunOutputs, read_summary
from voc.errors import VocError
from voc.knowledge import KnowledgeError
from voc.periods import Period, period_of

log = logging.getLogger("voc.mcp")

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
WRITES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)

Transport = Literal["stdio", "http"]

# Errors whose messages are written for the person asking; anything else is an internal error.
DOMAIN_ERRORS = (ToolError, VocError, KnowledgeError)
INTERNAL_ERROR = "内部错误：{tool} 未能完成，详情见服务日志 (internal error in {tool}; details are in the server log)"

MAX_OFFSET = 1_000_000
LATEST_WEEK_HINT = "最近一周（先用 tickets 的 count_voices(group_by=\"week\") 找到）"

# ------------------------------------------------------------------ argument types shared by tools

Week = Annotated[str | None, Field(
    description="ISO week like 2026-W47 (Monday–Sunday, Asia/Shanghai); or give date_from and date_to.",
    max_length=10)]
DateFrom = Annotated[date | None, Field(description="First local day of the period (with date_to; instead of week).")]
DateTo = Annotated[date | None, Field(description="Last local day of the period, inclusive.")]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description=f"How many results to skip (0–{MAX_OFFSET:,}); "
                              "for long reads page with cursor instead.")]
OwnerDepartment = Annotated[str | None, Field(
    max_length=32, description="An owner department of the service matrix, e.g. 信息科技部 (see get_service_matrix).")]


def formerly(*old_names: str, name: str = "limit") -> AliasChoices:
    """Accept an argument's former name too (deprecated; not advertised in the schema)."""
    return AliasChoices(name, *old_names)


def latest_run_label(runs_dir: Path) -> str | None:
    """The period label (2026-W47) of the latest period that has a complete weekly run."""
    found: list[tuple[date, str]] = []
    for path in runs_dir.glob(f"*/{SUMMARY_FILE}"):
        try:
            period = read_summary(path.parent).period
        except (OSError, ValueError):  # a half-written or foreign run.json is not a run
            continue
        if RunOutputs.is_complete(path.parent):
            found.append((period.end, period.label))
    return max(found)[1] if found else None


def resolve_period(week: str | None, date_from: date | None, date_to: date | None) -> Period:
    if not week and not (date_from and date_to):
        raise ToolError("give either week (2026-W47) or both date_from and date_to "
                        "(请给出 week，或同时给出 date_from 与 date_to)")
    try:
        return period_of(week, date_from, date_to)
    except ValidationError as exc:  # the Period's own check, e.g. an end before the start
        raise ToolError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    except ValueError as exc:
        raise ToolError(str(exc)) from None


# ------------------------------------------------------------------ the server class


def data_missing(settings: Settings) -> str | None:
    """Why this data directory holds no data (neither the SQLite store nor the Chroma directory),
    or None. A database or Chroma server configured by URL counts as data."""
    directory = settings.resolved_data_dir
    has_store = settings.database_url is not None or (directory / "voc.db").exists()
    has_vectors = settings.chroma_url is not None or settings.chroma_dir.exists()
    if has_store or has_vectors:
        return None
    return (f"no VOC data in {directory} (looked for voc.db and chroma/ there). Set VOC_DATA_DIR to the data "
            f"directory that `voc ingest` and `voc kb load` wrote, e.g. VOC_DATA_DIR=/path/to/.voc. "
            f"未找到数据目录 {directory}，请设置 VOC_DATA_DIR。")


class VocServer(FastMCP):
    """FastMCP with the product's conventions (see the module docstring)."""

    def __init__(self, name: str, instructions: str, settings: Settings, creates_data: Iterable[str] = ()) -> None:
        """`creates_data`: the writing tools that may create the store of a new data directory (a
        run's first registration, a recorded case); every other tool refuses a directory without data."""
        super().__init__(name, instructions=instructions, log_level="WARNING")
        # FastMCP takes no version; the low-level server it wraps reports this one as serverInfo.version.
        self._mcp_server.version = __version__
        self.voc_settings = settings
        self.creates_data = frozenset(creates_data)
        self._data_found = False

    def add_tool(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        super().add_tool(fn, *args, **kwargs)
        tool = self._tool_manager.get_tool(kwargs.get("name") or fn.__name__)
        if tool is not None:
            forbid_unknown_arguments(tool)

    def require_data(self) -> None:
        """Refuse to answer from an empty store: checked on every call until the data is there, and
        before anything in the directory is opened (which would create an empty store)."""
        if not self._data_found:
            missing = data_missing(self.voc_settings)
            if missing:
                raise ToolError(missing)
            self._data_found = True

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Sequence[ContentBlock] | dict[str, Any]:
        try:
            if name not in self.creates_data:
                self.require_data()
            return await super().call_tool(name, arguments)
        except ToolError as error:
            raise ToolError(self.plain_error(name, error)) from None

    def plain_error(self, tool: str, error: ToolError) -> str:
        """The one place where a tool's failure becomes the message the client sees."""
        cause = error.__cause__
        if cause is None or isinstance(cause, DOMAIN_ERRORS):
            return str(cause or error)
        known = self._tool_manager.get_tool(tool)
        if isinstance(cause, ValidationError) and known and cause.title == known.fn_metadata.arg_model.__name__:
            return invalid_arguments(cause, sorted(known.parameters.get("properties", {})))
        log.error("tool %s failed", tool, exc_info=cause)
        return INTERNAL_ERROR.format(tool=tool)


def forbid_unknown_arguments(tool: Tool) -> None:
    """Give the tool's argument model `extra="forbid"` and advertise it in its input schema.

    FastMCP's argument models ignore unknown arguments (python-sdk issue #3067): a misspelt or
    invented argument would silently run the tool with its default. A subclass of the generated
    model that forbids extras is validated instead, and the schema clients see says so."""
    model = tool.fn_metadata.arg_model
    strict: type[ArgModelBase] = type(model.__name__, (model,), {
        "model_config": ConfigDict(extra="forbid"), "__module__": model.__module__, "__doc__": model.__doc__})
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)


def invalid_arguments(error: ValidationError, accepted: list[str]) -> str:
    problems: list[str] = []
    unknown: list[str] = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        if item["type"] == "extra_forbidden" and len(item["loc"]) == 1:
            unknown.append(where)
        elif item["type"] == "missing":
            problems.append(f"{where} is required")
        else:
            problems.append(f"{where}: {item['msg']}")
    if unknown:
        problems.insert(0, f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                           f"(accepted: {', '.join(accepted)})")
    return "invalid arguments — " + "; ".join(problems)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def security_for(host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection on loopback; any Host when deliberately bound elsewhere."""
    if host in LOOPBACK:
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def run(server: FastMCP, transport: Transport, host: str, port: int, token: str | None) -> None:
    # Over stdio the protocol owns stdout: every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    if transport == "stdio":
        server.run(transport="stdio")
        return
    import uvicorn

    if host not in LOOPBACK and not token:
        # The writing tools (register_run, update_proposal, record_case, …) must never be reachable
        # from the network without a token: refused here too, not only by `voc mcp`.
        raise ValueError("binding beyond loopback needs a bearer token (--token or VOC_MCP_TOKEN)")
    server.settings.host, server.settings.port = host, port
    server.settings.transport_security = security_for(host)
    app: ASGIApp = server.streamable_http_app()
    if token:
        app = BearerGuard(app, token)
    print(f"MCP server {server.name!r} (voc {__version__}) on {endpoint(host, port, server)}"
          f"{' (bearer token required)' if token else ''}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def endpoint(host: str, port: int, server: FastMCP) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{server.settings.streamable_http_path}"

