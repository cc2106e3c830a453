"""The chat tasks: rebuild the message, build its network's transport, route it.

`TASK_HANDLERS` (`chat_message`) is what the pipeline runs; a live network's tasks
(`chat_message_live:<network>`) run only where `live_task_handlers(network)` is given to a worker:
in the process holding that network's session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omnizap.chat import store
from omnizap.chat.context import ChatContext, SendFailed
from omnizap.chat.inbox import CHAT_MESSAGE, LIVE_NETWORKS, task_type_for
from omnizap.chat.messages import IncomingMessage, Transport
from omnizap.chat.router import route
from omnizap.chat.transports import registry
from omnizap.platform.queue.context import TaskContext, TaskHandler


def process_message(context: TaskContext, message: IncomingMessage, transport: Transport) -> str:
    """Route one message with its chat's settings; returns what it was taken for."""
    config = store.chat_config(context.database, message.network, message.chat_id)
    chat = ChatContext(
        message=message,
        transport=transport,
        settings=context.settings,
        database=context.database,
        storage=context.storage,
        config=config,
    )
    return route(chat)


def run_chat_message(context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    message = store.with_remembered_media(context.database, IncomingMessage.from_payload(payload))
    transport = registry.build(message.network, context.settings)
    try:
        outcome = process_message(context, message, transport)
    except SendFailed as exc:
        # Re-running the command could repeat what it changed (a pack created twice), so a reply
        # that cannot be delivered ends the task; the log keeps the reason.
        context.logger.warning("chat %s %s: %s", message.network, message.message_id, exc)
        outcome = "send_failed"
    return {"network": message.network, "outcome": outcome}


TASK_HANDLERS: dict[str, TaskHandler] = {CHAT_MESSAGE: run_chat_message}


def live_task_handlers(network: str) -> dict[str, TaskHandler]:
    """The handler of one live network's task type, for the process that holds its session."""
    if network not in LIVE_NETWORKS:
        raise ValueError(f"{network!r} is not a live network; its messages are {CHAT_MESSAGE} tasks")
    return {task_type_for(network): run_chat_message}
