from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenRefreshView,
)

from marketplace.backoffice import site as backoffice_site
from wizamart.health import health

urlpatterns = [
    path("health", health, name="health"),
    path("admin/imports/", include("imports.urls")),
    path("feeds/", include("imports.feed_urls")),
    path("admin/", admin.site.urls),
    path("store/", backoffice_site.urls),
    path("i18n/setlang/", set_language, name="set_language"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/token/", TokenObtainPairView.as_view(), name="token-obtain"),
    path("api/v1/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("api/v1/token/blacklist/", TokenBlacklistView.as_view(), name="token-blacklist"),
    path("api/v1/letzshop/", include("imports.letzshop.urls")),
    path("account/", include("notifications.urls")),
    path("", include("marketplace.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
