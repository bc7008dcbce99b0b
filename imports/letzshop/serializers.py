"""DRF serializers of the Letzshop API."""

from __future__ import annotations

from rest_framework import serializers

from imports.letzshop.models import FulfilmentTask, InventoryUnit


class UnitDecisionSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=100)
    available = serializers.BooleanField()


class UnitDecisionsSerializer(serializers.Serializer):
    units = UnitDecisionSerializer(many=True, allow_empty=False)

    def validate_units(self, units):
        ids = [unit["id"] for unit in units]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("Each unit may appear once.")
        return units


class TrackingSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=100)
    provider = serializers.CharField(max_length=40)


class InventoryUnitSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")
    sku = serializers.CharField(source="order_line.sku")
    title = serializers.CharField(source="order_line.title")

    class Meta:
        model = InventoryUnit
        fields = ["id", "state", "sku", "title", "decided_at"]


class FulfilmentTaskSerializer(serializers.ModelSerializer):
    class Meta:
        model = FulfilmentTask
        fields = ["id", "kind", "status", "attempts", "last_error", "http_status", "payload"]
