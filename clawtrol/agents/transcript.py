"""A session's transcript from chat.history, as messages with text and tool calls (the original's rules:
text blocks joined, tool calls listed under the assistant message, tool results as their own entries)."""

from __future__ import annotations

from typing import Any

from ..gateway.client import GatewayClient

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_TOOL_TEXT = 20_000
TOOL_CALL_TYPES = {"toolCall", "tool_use", "toolUse", "tool_call"}
TOOL_RESULT_ROLES = {"toolResult", "tool", "tool_result"}


def _text(content: Any) -> str:
    """Content as text: a string, or the text of a list of strings and {type: text} blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "\n".join(parts)
    return ""


def _tool_calls(content: Any) -> list[dict]:
    calls = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and block.get("type") in TOOL_CALL_TYPES:
            calls.append({"id": block.get("id"), "name": block.get("name") or "tool",
                          "arguments": block.get("arguments", block.get("input"))})
    return calls


def convert(message: Any) -> dict | None:
    if not isinstance(message, dict):
        return None
    role = message.get("role")
    entry: dict[str, Any] = {"timestamp": message.get("timestamp")}
    if role in TOOL_RESULT_ROLES:
        entry.update(role="tool", toolName=message.get("toolName") or "tool",
                     content=_text(message.get("content"))[:MAX_TOOL_TEXT], isError=bool(message.get("isError")))
        return entry
    if role == "custom":
        entry.update(role="system", content=_text(message.get("content")) or str(message.get("customType") or ""))
        return entry
    entry.update(role=role if role in ("user", "assistant", "system") else "system",
                 content=_text(message.get("content")))
    calls = _tool_calls(message.get("content"))
    if calls:
        entry["toolCalls"] = calls
    if role == "assistant":
        entry["model"] = message.get("model")
    return entry


async def history(gateway: GatewayClient, session_key: str, limit: int = DEFAULT_LIMIT) -> dict:
    result = await gateway.request("chat.history", {"sessionKey": session_key, "limit": limit})
    result = result if isinstance(result, dict) else {}
    messages = [entry for entry in (convert(m) for m in result.get("messages") or []) if entry is not None]
    return {"sessionKey": session_key, "sessionId": result.get("sessionId"), "messages": messages,
            "totalMessages": result.get("totalMessages", len(messages)), "hasMore": bool(result.get("hasMore"))}
