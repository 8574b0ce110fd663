"""Consul: services, their instances, health checks, nodes, and every check state transition."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.store.models import Base


class ConsulService(Base):
    """A service name of one Consul source, with the tags its instances carry (catalog/services)."""

    __tablename__ = "consul_services"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[float] = mapped_column(Float)


class ConsulInstance(Base):
    """One registration of a service on a node, as the catalog (and, if it owns it, the agent) has it."""

    __tablename__ = "consul_instances"
    __table_args__ = (Index("ix_consul_instances_service", "source", "service"),)

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    service: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "agent": registered with the agent jobdash talks to; "catalog": only in the catalog.
    owner: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[float] = mapped_column(Float)


class ConsulCheck(Base):
    """A health check as last seen: of a service instance, or of a node when service_id is ""."""

    __tablename__ = "consul_checks"
    __table_args__ = (Index("ix_consul_checks_service", "source", "service"),)

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    check_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(255), default="")
    service: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16))  # passing | warning | critical
    output: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")  # a maintenance check's reason
    type: Mapped[str] = mapped_column(String(32), default="")
    changed_at: Mapped[float] = mapped_column(Float)  # when its status last changed, as jobdash saw it
    updated_at: Mapped[float] = mapped_column(Float)


class ConsulNode(Base):
    """A node of the datacenter (catalog/nodes)."""

    __tablename__ = "consul_nodes"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    datacenter: Mapped[str] = mapped_column(String(64), default="")
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[float] = mapped_column(Float)


class ConsulTransition(Base):
    """One change of a check's status: from (None for a new check), to, when, and what it said."""

    __tablename__ = "consul_transitions"
    __table_args__ = (Index("ix_consul_transitions_service_at", "source", "service", "at"),
                      Index("ix_consul_transitions_check_at", "source", "node", "check_id", "at"),
                      Index("ix_consul_transitions_at", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(255))
    check_id: Mapped[str] = mapped_column(String(255))
    service: Mapped[str] = mapped_column(String(255), default="")
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[float] = mapped_column(Float)
    output: Mapped[str] = mapped_column(Text, default="")  # an excerpt
