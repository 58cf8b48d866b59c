"""Unmanaged models of the Gestimum tables the project reads and writes.

Table and column names are exactly those of ``shared/gestimum-schema.md``.
Custom fields (``XXX_*``) differ per customer and are not declared here: the
gateway discovers them by introspection and reaches them through
:class:`relance.gestimum.columns.SiblingColumn`.
"""

from django.db import models

MONEY = {"max_digits": 20, "decimal_places": 4}


class GestimumModel(models.Model):
    class Meta:
        abstract = True
        managed = False
        app_label = "gestimum"


class TiersFamily(GestimumModel):
    fat_code = models.CharField(primary_key=True, max_length=10, db_column="FAT_CODE")
    fat_lib = models.CharField(max_length=60, null=True, db_column="FAT_LIB")

    class Meta(GestimumModel.Meta):
        db_table = "TIERS_FAM"


class Representative(GestimumModel):
    rep_code = models.CharField(primary_key=True, max_length=3, db_column="REP_CODE")
    rep_nom = models.CharField(max_length=60, null=True, db_column="REP_NOM")
    rep_prenom = models.CharField(max_length=60, null=True, db_column="REP_PRENOM")
    rep_email = models.CharField(max_length=60, null=True, db_column="REP_EMAIL")

    class Meta(GestimumModel.Meta):
        db_table = "REPRESENTANTS"


class PaymentMode(GestimumModel):
    reg_code = models.CharField(primary_key=True, max_length=8, db_column="REG_CODE")
    reg_lib = models.CharField(max_length=40, null=True, db_column="REG_LIB")
    reg_type = models.CharField(max_length=10, null=True, db_column="REG_TYPE")
    reg_nbj = models.IntegerField(null=True, db_column="REG_NBJ")
    reg_fdm = models.BooleanField(null=True, db_column="REG_FDM")

    class Meta(GestimumModel.Meta):
        db_table = "MODE_REG"


class Tiers(GestimumModel):
    pcf_code = models.CharField(primary_key=True, max_length=20, db_column="PCF_CODE")
    pcf_type = models.CharField(max_length=1, null=True, db_column="PCF_TYPE")
    pcf_rs = models.CharField(max_length=60, null=True, db_column="PCF_RS")
    pcf_rs2 = models.CharField(max_length=60, null=True, db_column="PCF_RS2")
    pcf_civile = models.CharField(max_length=25, null=True, db_column="PCF_CIVILE")
    pcf_dort = models.BooleanField(null=True, db_column="PCF_DORT")
    pcf_bloque = models.BooleanField(null=True, db_column="PCF_BLOQUE")
    fat_code = models.CharField(max_length=10, null=True, db_column="FAT_CODE")
    sft_code = models.CharField(max_length=10, null=True, db_column="SFT_CODE")
    pcf_rue = models.CharField(max_length=60, null=True, db_column="PCF_RUE")
    pcf_comp = models.CharField(max_length=60, null=True, db_column="PCF_COMP")
    pcf_cp = models.CharField(max_length=10, null=True, db_column="PCF_CP")
    pcf_ville = models.CharField(max_length=200, null=True, db_column="PCF_VILLE")
    pay_code = models.CharField(max_length=3, null=True, db_column="PAY_CODE")
    pcf_tel1 = models.CharField(max_length=20, null=True, db_column="PCF_TEL1")
    pcf_tel2 = models.CharField(max_length=20, null=True, db_column="PCF_TEL2")
    pcf_fax = models.CharField(max_length=20, null=True, db_column="PCF_FAX")
    pcf_email = models.CharField(max_length=60, null=True, db_column="PCF_EMAIL")
    pcf_npai = models.BooleanField(null=True, db_column="PCF_NPAI")
    pcf_siret = models.CharField(max_length=14, null=True, db_column="PCF_SIRET")
    pcf_siren = models.CharField(max_length=9, null=True, db_column="PCF_SIREN")
    rep_code = models.CharField(max_length=3, null=True, db_column="REP_CODE")
    reg_code = models.CharField(max_length=8, null=True, db_column="REG_CODE")
    pcf_payeur = models.CharField(max_length=20, null=True, db_column="PCF_PAYEUR")
    pcf_langue = models.CharField(max_length=15, null=True, db_column="PCF_LANGUE")
    pcf_mt_rel = models.DecimalField(null=True, db_column="PCF_MT_REL", **MONEY)
    pcf_dtcree = models.DateTimeField(null=True, db_column="PCF_DTCREE")
    pcf_dtmaj = models.DateTimeField(null=True, db_column="PCF_DTMAJ")
    pcf_usrmaj = models.CharField(max_length=20, null=True, db_column="PCF_USRMAJ")
    pcf_nummaj = models.IntegerField(null=True, db_column="PCF_NUMMAJ")

    class Meta(GestimumModel.Meta):
        db_table = "TIERS"


class Contact(GestimumModel):
    cct_numero = models.CharField(primary_key=True, max_length=10, db_column="CCT_NUMERO")
    cct_code = models.CharField(max_length=15, null=True, db_column="CCT_CODE")
    cct_table = models.CharField(max_length=3, null=True, db_column="CCT_TABLE")
    cct_origin = models.CharField(max_length=20, null=True, db_column="CCT_ORIGIN")
    cct_civile = models.CharField(max_length=25, null=True, db_column="CCT_CIVILE")
    cct_prenom = models.CharField(max_length=20, null=True, db_column="CCT_PRENOM")
    cct_nom = models.CharField(max_length=30, null=True, db_column="CCT_NOM")
    cct_telb = models.CharField(max_length=20, null=True, db_column="CCT_TELB")
    cct_telm = models.CharField(max_length=20, null=True, db_column="CCT_TELM")
    cct_email = models.CharField(max_length=60, null=True, db_column="CCT_EMAIL")
    cct_fonct = models.CharField(max_length=15, null=True, db_column="CCT_FONCT")
    cct_qual1 = models.CharField(max_length=15, null=True, db_column="CCT_QUAL1")
    cct_qual2 = models.CharField(max_length=15, null=True, db_column="CCT_QUAL2")
    cct_dort = models.BooleanField(null=True, db_column="CCT_DORT")

    class Meta(GestimumModel.Meta):
        db_table = "CONTACTS"


class Document(GestimumModel):
    doc_numero = models.CharField(primary_key=True, max_length=10, db_column="DOC_NUMERO")
    doc_piece = models.CharField(max_length=30, null=True, db_column="DOC_PIECE")
    doc_type = models.CharField(max_length=1, null=True, db_column="DOC_TYPE")
    doc_stype = models.CharField(max_length=1, null=True, db_column="DOC_STYPE")
    doc_etat = models.CharField(max_length=1, null=True, db_column="DOC_ETAT")
    doc_date = models.DateTimeField(null=True, db_column="DOC_DATE")
    tiers = models.ForeignKey(
        Tiers, models.DO_NOTHING, db_column="PCF_CODE", db_constraint=False, null=True,
        related_name="documents",
    )
    pcf_payeur = models.CharField(max_length=20, null=True, db_column="PCF_PAYEUR")
    doc_refpcf = models.CharField(max_length=60, null=True, db_column="DOC_REFPCF")
    reg_code = models.CharField(max_length=8, null=True, db_column="REG_CODE")
    rep_code = models.CharField(max_length=3, null=True, db_column="REP_CODE")
    dev_code = models.CharField(max_length=3, null=True, db_column="DEV_CODE")
    prj_code = models.CharField(max_length=20, null=True, db_column="PRJ_CODE")
    doc_brut = models.DecimalField(null=True, db_column="DOC_BRUT", **MONEY)
    doc_mt_ht = models.DecimalField(null=True, db_column="DOC_MT_HT", **MONEY)
    doc_mt_tva = models.DecimalField(null=True, db_column="DOC_MT_TVA", **MONEY)
    doc_mt_ttc = models.DecimalField(null=True, db_column="DOC_MT_TTC", **MONEY)
    doc_mt_net = models.DecimalField(null=True, db_column="DOC_MT_NET", **MONEY)
    doc_acpte = models.DecimalField(null=True, db_column="DOC_ACPTE", **MONEY)
    doc_f_rs = models.CharField(max_length=60, null=True, db_column="DOC_F_RS")
    doc_f_rue = models.CharField(max_length=60, null=True, db_column="DOC_F_RUE")
    doc_f_comp = models.CharField(max_length=60, null=True, db_column="DOC_F_COMP")
    doc_f_cp = models.CharField(max_length=10, null=True, db_column="DOC_F_CP")
    doc_f_vill = models.CharField(max_length=200, null=True, db_column="DOC_F_VILL")
    doc_memo = models.TextField(null=True, db_column="DOC_MEMO")
    doc_dtmaj = models.DateTimeField(null=True, db_column="DOC_DTMAJ")
    doc_usrmaj = models.CharField(max_length=20, null=True, db_column="DOC_USRMAJ")
    doc_nummaj = models.IntegerField(null=True, db_column="DOC_NUMMAJ")

    class Meta(GestimumModel.Meta):
        db_table = "DOCUMENTS"


class DocumentLine(GestimumModel):
    pk = models.CompositePrimaryKey("document", "lig_numero")
    document = models.ForeignKey(
        Document, models.DO_NOTHING, db_column="DOC_NUMERO", db_constraint=False,
        related_name="lines",
    )
    lig_numero = models.IntegerField(db_column="LIG_NUMERO")
    art_code = models.CharField(max_length=30, null=True, db_column="ART_CODE")
    lig_lib = models.CharField(max_length=255, null=True, db_column="LIG_LIB")
    lig_qte = models.FloatField(null=True, db_column="LIG_QTE")
    lig_p_brut = models.DecimalField(null=True, db_column="LIG_P_BRUT", **MONEY)
    lig_p_net = models.DecimalField(null=True, db_column="LIG_P_NET", **MONEY)
    lig_total = models.DecimalField(null=True, db_column="LIG_TOTAL", **MONEY)
    nat_tvatx = models.DecimalField(null=True, db_column="NAT_TVATX", max_digits=9, decimal_places=4)

    class Meta(GestimumModel.Meta):
        db_table = "LIGNES"


class Echeance(GestimumModel):
    ech_numero = models.CharField(primary_key=True, max_length=10, db_column="ECH_NUMERO")
    document = models.ForeignKey(
        Document, models.DO_NOTHING, db_column="DOC_NUMERO", db_constraint=False, null=True,
        related_name="echeances",
    )
    ech_piece = models.CharField(max_length=30, null=True, db_column="ECH_PIECE")
    tiers = models.ForeignKey(
        Tiers, models.DO_NOTHING, db_column="PCF_CODE", db_constraint=False, null=True,
        related_name="echeances",
    )
    pcf_rs = models.CharField(max_length=60, null=True, db_column="PCF_RS")
    ech_lib = models.CharField(max_length=60, null=True, db_column="ECH_LIB")
    ech_dtemis = models.DateTimeField(null=True, db_column="ECH_DTEMIS")
    ech_date = models.DateTimeField(null=True, db_column="ECH_DATE")
    reg_code = models.CharField(max_length=8, null=True, db_column="REG_CODE")
    ech_arecev = models.DecimalField(null=True, db_column="ECH_ARECEV", **MONEY)
    ech_recu = models.DecimalField(null=True, db_column="ECH_RECU", **MONEY)
    ech_apayer = models.DecimalField(null=True, db_column="ECH_APAYER", **MONEY)
    ech_payer = models.DecimalField(null=True, db_column="ECH_PAYER", **MONEY)
    ech_solder = models.BooleanField(null=True, db_column="ECH_SOLDER")
    ech_impaye = models.CharField(max_length=15, null=True, db_column="ECH_IMPAYE")
    ech_etat = models.CharField(max_length=1, null=True, db_column="ECH_ETAT")
    ech_nbrel = models.IntegerField(null=True, db_column="ECH_NBREL")
    ech_dtmaj = models.DateTimeField(null=True, db_column="ECH_DTMAJ")
    ech_usrmaj = models.CharField(max_length=20, null=True, db_column="ECH_USRMAJ")
    ech_nummaj = models.IntegerField(null=True, db_column="ECH_NUMMAJ")

    class Meta(GestimumModel.Meta):
        db_table = "ECHEANCES"


class Relance(GestimumModel):
    rel_numero = models.CharField(primary_key=True, max_length=10, db_column="REL_NUMERO")
    rel_piece = models.CharField(max_length=30, null=True, db_column="REL_PIECE")
    rel_date = models.DateTimeField(null=True, db_column="REL_DATE")
    rel_level = models.CharField(max_length=3, null=True, db_column="REL_LEVEL")
    rel_memo = models.TextField(null=True, db_column="REL_MEMO")
    rel_file = models.CharField(max_length=260, null=True, db_column="REL_FILE")
    rel_dtmaj = models.DateTimeField(null=True, db_column="REL_DTMAJ")
    rel_usrmaj = models.CharField(max_length=20, null=True, db_column="REL_USRMAJ")
    rel_nummaj = models.IntegerField(null=True, db_column="REL_NUMMAJ")

    class Meta(GestimumModel.Meta):
        db_table = "RELANCES"


class RelanceEcheance(GestimumModel):
    pk = models.CompositePrimaryKey("rel_numero", "ech_numero")
    rel_numero = models.CharField(max_length=10, db_column="REL_NUMERO")
    ech_numero = models.CharField(max_length=10, db_column="ECH_NUMERO")
    rel_mt = models.DecimalField(null=True, db_column="REL_MT", **MONEY)
    rel_mtd = models.DecimalField(null=True, db_column="REL_MTD", **MONEY)
    rel_mte = models.DecimalField(null=True, db_column="REL_MTE", **MONEY)

    class Meta(GestimumModel.Meta):
        db_table = "REL_ECH"


class RelanceTiers(GestimumModel):
    pk = models.CompositePrimaryKey("rel_numero", "pcf_code")
    rel_numero = models.CharField(max_length=10, db_column="REL_NUMERO")
    pcf_code = models.CharField(max_length=20, db_column="PCF_CODE")
    rel_repons = models.TextField(null=True, db_column="REL_REPONS")
    rel_memo = models.TextField(null=True, db_column="REL_MEMO")

    class Meta(GestimumModel.Meta):
        db_table = "REL_TIERS"


class Action(GestimumModel):
    act_numero = models.CharField(primary_key=True, max_length=10, db_column="ACT_NUMERO")
    act_date = models.DateTimeField(null=True, db_column="ACT_DATE")
    act_heure = models.CharField(max_length=6, null=True, db_column="ACT_HEURE")
    pcf_code = models.CharField(max_length=20, null=True, db_column="PCF_CODE")
    cct_numero = models.CharField(max_length=10, null=True, db_column="CCT_NUMERO")
    act_objet = models.CharField(max_length=80, null=True, db_column="ACT_OBJET")
    act_type = models.CharField(max_length=15, null=True, db_column="ACT_TYPE")
    act_etat = models.CharField(max_length=15, null=True, db_column="ACT_ETAT")
    act_termine = models.BooleanField(null=True, db_column="ACT_TERMINE")
    doc_numero = models.CharField(max_length=10, null=True, db_column="DOC_NUMERO")
    act_desc = models.TextField(null=True, db_column="ACT_DESC")
    act_file = models.CharField(max_length=260, null=True, db_column="ACT_FILE")
    act_dtcre = models.DateTimeField(null=True, db_column="ACT_DTCRE")
    act_usrcre = models.CharField(max_length=20, null=True, db_column="ACT_USRCRE")

    class Meta(GestimumModel.Meta):
        db_table = "ACTIONS"


class Counter(GestimumModel):
    """Identifier counters on engines other than SQL Server.

    On SQL Server, Gestimum's own ``G2GETNEWNUMERO`` procedure hands out
    identifiers; elsewhere (demo and tests) this table plays its part.
    """

    name = models.CharField(primary_key=True, max_length=20, db_column="CPT_NOM")
    value = models.BigIntegerField(default=0, db_column="CPT_VALEUR")

    class Meta(GestimumModel.Meta):
        db_table = "EASYREL_COMPTEURS"


# Tables the project relies on, in creation order (demo and test databases).
ALL_MODELS = [
    TiersFamily, Representative, PaymentMode, Tiers, Contact, Document, DocumentLine,
    Echeance, Relance, RelanceEcheance, RelanceTiers, Action, Counter,
]
