from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.billing_home, name="home"),
    path("releves/<int:pk>/pdf/", views.statement_pdf, name="statement_pdf"),
    path("releves/<int:pk>/envois.csv", views.statement_csv, name="statement_csv"),
]
