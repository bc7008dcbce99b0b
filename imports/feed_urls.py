"""Public feed URLs, mounted at /feeds/ (outside the admin)."""

from django.urls import path

from imports import views

app_name = "feeds"

urlpatterns = [
    path("<slug:store_code>/<str:language>.tsv", views.public_feed, name="public_feed"),
]
