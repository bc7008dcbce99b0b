from django.urls import path

from imports import views

app_name = "imports"

urlpatterns = [
    path("upload/", views.upload_feed, name="upload"),
]
