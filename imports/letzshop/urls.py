"""Letzshop API routes, mounted at /api/v1/letzshop/."""

from django.urls import path

from imports.letzshop import api

app_name = "letzshop"

urlpatterns = [
    path("orders/<uuid:public_id>/units/", api.OrderUnitsApi.as_view(), name="order-units"),
    path(
        "orders/<uuid:public_id>/tracking/", api.OrderTrackingApi.as_view(), name="order-tracking"
    ),
]
