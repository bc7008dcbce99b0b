from django.urls import path

from imports import views

app_name = "imports"

urlpatterns = [
    path("upload/", views.upload_feed, name="upload"),
    path("export/", views.export_feed, name="export"),
    path("jobs/<uuid:public_id>/progress.json", views.job_progress, name="job_progress"),
    path("jobs/<uuid:public_id>/rejected-lines.csv", views.job_errors_csv, name="job_errors_csv"),
]
