from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("connexion/", views.LoginView.as_view(), name="login"),
    path("deconnexion/", auth_views.LogoutView.as_view(next_page="portal:login"), name="logout"),
    path("mot-de-passe/oublie/", views.password_reset, name="password_reset"),
    path("mot-de-passe/envoye/", views.password_reset_done, name="password_reset_done"),
    path("mot-de-passe/<uidb64>/<token>/", views.password_reset_confirm, name="password_reset_confirm"),
    path("mot-de-passe/modifie/", views.password_reset_complete, name="password_reset_complete"),
    path("envois/", views.history, name="history"),
    path("envois/export.csv", views.export_csv, name="export_csv"),
    path("envois/<int:pk>/", views.detail, name="detail"),
    path("envois/<int:pk>/pdf/", views.download_pdf, name="pdf"),
    path("envois/<int:pk>/preuve.zip", views.proof, name="proof"),
    path("envois/traiter/", views.mark_handled, name="mark_handled"),
    path("courrier/", views.diverted, name="diverted"),
    path("courrier/a-imprimer.pdf", views.diverted_pdf, name="diverted_pdf"),
    path("pauses/", views.pauses, name="pauses"),
    path("pauses/<int:pk>/lever/", views.lift_pause, name="lift_pause"),
]
