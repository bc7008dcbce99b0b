from django.contrib.auth import views as auth_views
from django.urls import path

from marketplace import views

app_name = "marketplace"

urlpatterns = [
    path("", views.home, name="home"),
    path("products/", views.product_list, name="product_list"),
    path("products/<uuid:public_id>/", views.product_detail, name="product_detail"),
    path("stores/<slug:code>/", views.store_detail, name="store_detail"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/add/<uuid:public_id>/", views.cart_add, name="cart_add"),
    path("cart/update/<uuid:public_id>/", views.cart_update, name="cart_update"),
    path("cart/remove/<uuid:public_id>/", views.cart_remove, name="cart_remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/<uuid:public_id>/", views.checkout_done, name="checkout_done"),
    path(
        "account/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("account/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/register/", views.register, name="register"),
    path("account/orders/", views.my_orders, name="my_orders"),
    path("account/orders/<uuid:public_id>/", views.order_detail, name="order_detail"),
    path("team/invitations/<str:token>/", views.team_invitation, name="team_invitation"),
]
