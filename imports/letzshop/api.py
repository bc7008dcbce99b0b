"""REST API: confirm or decline units and send tracking of Letzshop orders (JWT).

Store-scoped: only members of the order's store see or change it; others get 404.
Domain refusals answer {"detail": "..."} with 409 (open exceptions) or 400.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from imports.letzshop import selectors, services
from imports.letzshop.serializers import (
    FulfilmentTaskSerializer,
    InventoryUnitSerializer,
    TrackingSerializer,
    UnitDecisionsSerializer,
)
from marketplace.models import Order
from marketplace.services import DomainError


def _member_order(request, public_id) -> Order:
    return get_object_or_404(
        Order.objects.filter(channel=Order.Channel.LETZSHOP, store__memberships__user=request.user),
        public_id=public_id,
    )


def _refused(exc: DomainError) -> Response:
    code = (
        status.HTTP_409_CONFLICT
        if isinstance(exc, services.OpenExceptions)
        else status.HTTP_400_BAD_REQUEST
    )
    return Response({"detail": str(exc)}, status=code)


class OrderUnitsApi(APIView):
    """GET the units of a Letzshop order; POST {"units": [{"id": "U-1", "available": true}]}."""

    def get(self, request, public_id):
        order = _member_order(request, public_id)
        units = InventoryUnitSerializer(selectors.order_units(order), many=True).data
        return Response({"order": str(order.public_id), "status": order.status, "units": units})

    def post(self, request, public_id):
        order = _member_order(request, public_id)
        serializer = UnitDecisionsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        decisions = {u["id"]: u["available"] for u in serializer.validated_data["units"]}
        try:
            tasks = services.decide_units(order, decisions, actor=request.user)
        except DomainError as exc:
            return _refused(exc)
        order.refresh_from_db()
        return Response(
            {
                "order": str(order.public_id),
                "status": order.status,
                "units": InventoryUnitSerializer(selectors.order_units(order), many=True).data,
                "tasks": FulfilmentTaskSerializer(tasks, many=True).data,
            },
            status=status.HTTP_202_ACCEPTED if tasks else status.HTTP_200_OK,
        )


class OrderTrackingApi(APIView):
    """POST {"code": "...", "provider": "..."}: store the tracking and send it."""

    def post(self, request, public_id):
        order = _member_order(request, public_id)
        serializer = TrackingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            task = services.set_tracking(order, actor=request.user, **serializer.validated_data)
        except DomainError as exc:
            return _refused(exc)
        order.refresh_from_db()
        return Response(
            {
                "order": str(order.public_id),
                "status": order.status,
                "task": FulfilmentTaskSerializer(task).data if task else None,
            },
            status=status.HTTP_202_ACCEPTED if task else status.HTTP_200_OK,
        )
